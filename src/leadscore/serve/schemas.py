"""Serve stage: the request and response bodies of the HTTP API (validated by pydantic)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

FeatureValue = float | int | str | bool | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Body):
    """One lead, given in exactly one of three ways.

    - ``lead_id``: a lead in the warehouse, scored at its contact time;
    - ``crd`` + ``contact_ts``: an advisor's CRD and the moment of contact (a lead not yet in
      the warehouse), through the same point-in-time join;
    - ``features``: every model feature (null for missing) and ``aum_tier``.
    """

    lead_id: str | None = Field(None, min_length=1, max_length=64)
    crd: int | None = Field(None, ge=1, le=99_999_999)
    contact_ts: datetime | None = None
    features: dict[str, FeatureValue] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ScoreRequest:
        by_crd = self.crd is not None or self.contact_ts is not None
        ways = sum([self.features is not None, by_crd, self.lead_id is not None and not by_crd])
        if ways != 1:
            raise ValueError("give exactly one of: lead_id, crd + contact_ts, features")
        if by_crd and (self.crd is None or self.contact_ts is None):
            raise ValueError("crd and contact_ts go together")
        if self.contact_ts is not None and self.contact_ts.tzinfo is None:
            raise ValueError("contact_ts must carry a time zone (e.g. 2025-11-03T14:05:00Z)")
        return self


class BatchRequest(_Body):
    """Several leads in one call (at most ``[serve] max_batch``)."""

    leads: list[ScoreRequest] = Field(min_length=1)


class ScoreResponse(BaseModel):
    """A scored lead, as batch scoring would store it."""

    lead_id: str | None
    probability: float
    score: int
    bucket: str
    tier: str
    drivers_text: str
    drivers: dict[str, list[dict[str, Any]]]
    model_version: str
    reps_snapshot_quarter: date | None = None
    firms_snapshot_quarter: date | None = None


class ErrorItem(BaseModel):
    """Why one lead of a batch could not be scored."""

    lead_id: str | None
    error: str
    detail: str


class BatchResponse(BaseModel):
    """One entry per requested lead, in request order."""

    results: list[ScoreResponse | ErrorItem]
