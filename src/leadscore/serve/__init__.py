"""Serve stage: score one lead (or a few) over HTTP, the moment it is contacted.

Reads the champion model bundle and, for a lead given by id or by CRD and contact time, the
warehouse (read-only, through the same point-in-time SQL as training and batch scoring).
Writes nothing but its own Prometheus metrics.
"""

from leadscore.serve.app import create_app

__all__ = ["create_app"]
