"""Push stage, Salesforce side: a small typed seam over simple-salesforce's Bulk API 2.0 client.

Reads the OAuth settings from the environment (never from a file); talks HTTPS to the
instance. Every call is one Bulk 2.0 request: create a job, upload its CSV, close it, read its
state, read its per-row results, abort it. Transient failures (timeouts, 5xx, refused
connections) are raised as :class:`BulkError` with ``transient=True`` so the caller retries.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Any, Literal

import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import JobState
from simple_salesforce.exceptions import SalesforceError

ResultsKind = Literal["successfulResults", "failedResults", "unprocessedrecords"]
#: Job states after which Salesforce will do nothing more with the job.
FINAL_STATES = frozenset({JobState.job_complete.value, JobState.failed.value,
                          JobState.aborted.value})  # fmt: skip
ENV_PREFIX = "LEADSCORE_SF_"


class BulkError(RuntimeError):
    """A Bulk API call failed; ``transient`` when retrying the same call may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SalesforceSettings:
    """Where and as whom to connect. Read from ``LEADSCORE_SF_*`` environment variables.

    Either ``instance_url`` + ``access_token`` (an OAuth access token obtained by the
    platform, e.g. a JWT bearer flow), or ``username`` + ``password`` + ``security_token``.
    """

    instance_url: str | None = None
    access_token: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    domain: str = "login"
    api_version: str = "59.0"
    timeout_seconds: float = 30.0
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SalesforceSettings:
        """Settings from ``LEADSCORE_SF_INSTANCE_URL``, ``…_ACCESS_TOKEN`` and friends.

        Raises:
            ValueError: neither a token nor a username/password pair is set.
        """
        env = dict(os.environ if env is None else env)

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name) or None

        out = cls(
            instance_url=get("INSTANCE_URL"),
            access_token=get("ACCESS_TOKEN"),
            username=get("USERNAME"),
            password=get("PASSWORD"),
            security_token=get("SECURITY_TOKEN"),
            domain=get("DOMAIN") or "login",
            api_version=get("API_VERSION") or "59.0",
            ca_bundle=get("CA_BUNDLE"),
        )
        token_login = out.instance_url and out.access_token
        password_login = out.username and out.password
        if not (token_login or password_login):
            raise ValueError(
                "no Salesforce credentials: set LEADSCORE_SF_INSTANCE_URL and "
                "LEADSCORE_SF_ACCESS_TOKEN (or LEADSCORE_SF_USERNAME, _PASSWORD, _SECURITY_TOKEN)"
            )
        return out


class _TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout (requests has no default one) and,
    when given, a CA bundle that the ``REQUESTS_CA_BUNDLE`` variable cannot override."""

    def __init__(self, timeout: float, ca_bundle: str | None = None) -> None:
        super().__init__()
        self._timeout = timeout
        self._ca_bundle = ca_bundle

    def request(self, method: str, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        if self._ca_bundle:
            kwargs.setdefault("verify", self._ca_bundle)
        return super().request(method, url, **kwargs)


class BulkClient:
    """The Bulk 2.0 ingest calls leadscore needs, for one sObject (``Lead`` by default)."""

    def __init__(self, sf: Salesforce, object_name: str = "Lead") -> None:
        # simple-salesforce exposes the per-call client only through the sObject handle.
        self._client = getattr(sf.bulk2, object_name)._client

    def create_upsert_job(self, external_id_field: str) -> str:
        """Open an upsert job; returns its id."""
        res = self._call("create_job", "upsert", external_id_field=external_id_field)
        return str(res["id"])

    def upload(self, job_id: str, csv_text: str) -> None:
        """Upload the job's CSV (one upload per job)."""
        self._call("upload_job_data", job_id, csv_text)

    def close(self, job_id: str) -> None:
        """Mark the upload complete so Salesforce starts processing."""
        self._call("close_job", job_id)

    def abort(self, job_id: str) -> None:
        """Abort an open job (its rows are not processed)."""
        self._call("abort_job", job_id, False)

    def state(self, job_id: str) -> dict[str, Any]:
        """The job's info: ``state``, ``numberRecordsProcessed``, ``numberRecordsFailed``."""
        return dict(self._call("get_job", job_id, False))

    def results(self, job_id: str, kind: ResultsKind) -> list[dict[str, str]]:
        """Per-row results of a finished job, as dicts keyed by CSV header."""
        text = self._call("get_ingest_results", job_id, kind)
        return list(csv.DictReader(io.StringIO(str(text))))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except SalesforceError as exc:
            status = int(getattr(exc, "status", 0) or 0)
            raise BulkError(f"{method}: HTTP {status}", transient=status >= 500) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise BulkError(f"{method}: {type(exc).__name__}", transient=True) from exc


def connect(
    settings: SalesforceSettings,
    object_name: str = "Lead",
    session: requests.Session | None = None,
) -> BulkClient:
    """A :class:`BulkClient` for ``settings`` (pass ``session`` for proxies or adapters)."""
    http = session or _TimeoutSession(settings.timeout_seconds, settings.ca_bundle)
    if settings.instance_url and settings.access_token:
        sf = Salesforce(
            instance_url=settings.instance_url,
            session_id=settings.access_token,
            version=settings.api_version,
            session=http,
        )
    else:
        sf = Salesforce(
            username=settings.username,
            password=settings.password,
            security_token=settings.security_token or "",
            domain=settings.domain,
            version=settings.api_version,
            session=http,
        )
    return BulkClient(sf, object_name)
