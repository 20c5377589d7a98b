"""Enablement stage, settings: sizes and confidence behind the documents.

Kept out of ``leadscore.toml``'s ``Settings`` on purpose: a section there enters the config hash
and so every model version, and these settings change documents, never the model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EnablementConfig(BaseModel):
    """How much evidence a playbook recommendation needs, and how much the documents show."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_segment_leads: int = Field(
        300, ge=1, description="Holdout leads a segment needs before it gets recommendations."
    )
    min_segment_conversions: int = Field(
        15, ge=1, description="Holdout conversions a segment needs before it gets any."
    )
    min_group_leads: int = Field(
        50, ge=1, description="Leads on each side of a comparison behind a recommendation."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Level of every interval.")
    top_features: int = Field(30, ge=3, le=60, description="Features on the cheat sheet.")
    drivers_per_segment: int = Field(3, ge=1, le=10)
    examples: int = Field(3, ge=1, le=10, description="High- and low-scoring examples.")
