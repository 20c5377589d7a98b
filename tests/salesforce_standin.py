"""A local stand-in for Salesforce's Bulk API 2.0 ingest endpoints, over HTTPS on loopback.

It speaks the job lifecycle simple-salesforce uses (create, upload, close, poll, results,
abort), keeps every row it accepted, and fails on purpose when told to: a status code for the
next N calls of one step, a delay longer than the client's timeout, or row-level failures
for chosen Ids. Certificates are made on the fly with ``cryptography``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import re
import ssl
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_JOB = re.compile(r"^/services/data/v[\d.]+/jobs/ingest/?(?P<job>[^/]*)/?(?P<tail>[^/]*)/?$")


@dataclass
class Faults:
    """What to break: ``status[step] = (code, n_times)``; ``delay[step] = (seconds, n_times)``."""

    status: dict[str, list[int]] = field(default_factory=dict)
    delay: dict[str, list[float]] = field(default_factory=dict)
    fail_ids: dict[str, str] = field(default_factory=dict)
    process_after_polls: int = 0

    def fail_next(self, step: str, code: int, times: int = 1) -> None:
        self.status.setdefault(step, []).extend([code] * times)

    def delay_next(self, step: str, seconds: float, times: int = 1) -> None:
        self.delay.setdefault(step, []).extend([seconds] * times)


@dataclass
class Job:
    id: str
    state: str = "Open"
    external_id: str = "Id"
    data: str = ""
    polls: int = 0
    ok: list[dict[str, str]] = field(default_factory=list)
    failed: list[tuple[dict[str, str], str]] = field(default_factory=list)


class BulkStandIn:
    """The server's state: jobs, accepted rows per Id, calls per step."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.accepted: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.calls: Counter[str] = Counter()
        self.faults = Faults()
        self.lock = threading.Lock()

    def process(self, job: Job) -> None:
        for row in csv.DictReader(io.StringIO(job.data)):
            reason = self.faults.fail_ids.get(row[job.external_id])
            if reason:
                job.failed.append((row, reason))
            else:
                job.ok.append(row)
                self.accepted[row[job.external_id]].append(row)
        job.state = "JobComplete"


def _handler(server_state: BulkStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _reply(self, code: int, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _fault(self, step: str) -> bool:
            s = server_state
            with s.lock:
                s.calls[step] += 1
                delays = s.faults.delay.get(step)
                delay = delays.pop(0) if delays else 0.0
                codes = s.faults.status.get(step)
                code = codes.pop(0) if codes else 0
            if delay:
                time.sleep(delay)
            if code:
                self._reply(code, json.dumps([{"errorCode": "SERVER_ERROR", "message": step}]))
                return True
            return False

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _route(self, method: str) -> None:
            m = _JOB.match(self.path)
            if not m or self.headers.get("Authorization") != "Bearer standin-token":
                self._reply(404 if not m else 401, "[]")
                return
            job_id, tail = m["job"], m["tail"]
            step = {"POST": "create", "PUT": "upload", "PATCH": "state_change",
                    "DELETE": "delete"}.get(method, tail or "get_job")  # fmt: skip
            body = self._body()
            if self._fault(step):
                return
            getattr(self, f"_do_{step}")(job_id, body)

        def _do_create(self, _job_id: str, body: bytes) -> None:
            spec = json.loads(body)
            with server_state.lock:
                job = Job(id=f"750{len(server_state.jobs) + 1:015d}",
                          external_id=spec.get("externalIdFieldName", "Id"))  # fmt: skip
                server_state.jobs[job.id] = job
            self._reply(200, json.dumps({"id": job.id, "state": job.state}))

        def _do_upload(self, job_id: str, body: bytes) -> None:
            job = server_state.jobs[job_id]
            if job.state != "Open" or job.data:
                self._reply(400, json.dumps([{"errorCode": "INVALIDJOBSTATE"}]))
                return
            job.data = body.decode()
            self._reply(201, "")

        def _do_state_change(self, job_id: str, body: bytes) -> None:
            job = server_state.jobs[job_id]
            new = json.loads(body)["state"]
            if new == "UploadComplete" and job.state == "Open":
                job.state = "UploadComplete"
            elif new == "Aborted" and job.state in ("Open", "UploadComplete"):
                job.state = "Aborted"
            self._reply(200, json.dumps({"id": job_id, "state": job.state}))

        def _do_get_job(self, job_id: str, _body: bytes) -> None:
            job = server_state.jobs[job_id]
            with server_state.lock:
                if job.state == "UploadComplete":
                    job.polls += 1
                    if job.polls > server_state.faults.process_after_polls:
                        server_state.process(job)
            info = {"id": job.id, "state": job.state,
                    "numberRecordsProcessed": len(job.ok) + len(job.failed),
                    "numberRecordsFailed": len(job.failed)}  # fmt: skip
            self._reply(200, json.dumps(info))

        def _do_successfulResults(self, job_id: str, _body: bytes) -> None:
            job = server_state.jobs[job_id]
            self._csv([["sf__Id", "sf__Created"]], [([r["Id"], "false"], r) for r in job.ok])

        def _do_failedResults(self, job_id: str, _body: bytes) -> None:
            job = server_state.jobs[job_id]
            self._csv([["sf__Id", "sf__Error"]], [(["", err], r) for r, err in job.failed])

        def _do_unprocessedrecords(self, job_id: str, _body: bytes) -> None:
            self._csv([[]], [])

        def _csv(
            self, head: list[list[str]], rows: list[tuple[list[str], dict[str, str]]]
        ) -> None:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            names = list(rows[0][1]) if rows else ["Id"]
            writer.writerow([*head[0], *names])
            for prefix, row in rows:
                writer.writerow([*prefix, *[row[n] for n in names]])
            self._reply(200, buf.getvalue(), "text/csv")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_GET(self) -> None:
            self._route("GET")

    return Handler


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leadscore stand-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "standin.pem", folder / "standin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class RunningStandIn:
    """A started stand-in: ``url``, ``cert`` (CA bundle for the client), ``state``."""

    def __init__(self, folder: Path) -> None:
        self.state = BulkStandIn()
        self.cert, key = make_certificate(folder)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
