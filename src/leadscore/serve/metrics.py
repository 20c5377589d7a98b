"""Serve stage: the service's Prometheus metrics (requests, latency, errors, scores)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class ServeMetrics:
    """One registry per app, so two apps in one process (tests) never share counts."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("leadscore_requests", "HTTP requests", ["endpoint", "status"],
                                registry=r)  # fmt: skip
        self.latency = Histogram("leadscore_request_seconds", "Request latency",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.errors = Counter("leadscore_errors", "Leads not scored, by reason", ["reason"],
                              registry=r)  # fmt: skip
        self.scores = Counter("leadscore_scores", "Leads scored, by bucket", ["bucket"],
                              registry=r)  # fmt: skip
        self.paths = Counter("leadscore_answers", "Answers by path: fast (a feature payload "
                             "typed with NumPy), index (a lead id from the lead index), checked "
                             "(the batch row checks), warehouse (the one-lead SQL)", ["path"],
                             registry=r)  # fmt: skip
        self.model = Gauge("leadscore_model_info", "Model serving (value 1)", ["version"],
                           registry=r)  # fmt: skip
