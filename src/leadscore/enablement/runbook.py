"""Enablement stage, production runbook: the daily job, alerts, refresh, promote, rollback, and
how to re-run after a failure, with the commands of this build.

Reads the command names the installed CLI offers and the model version; returns Markdown. A
command the runbook names that this build does not offer is marked, and listed at the top.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from importlib import resources

import jinja2

from leadscore.errors import ExitCode

_COMMAND = re.compile(r"`leadscore ([a-z][a-z-]*)")


def referenced_commands(text: str) -> set[str]:
    """Top-level command names a text uses as ``leadscore <name>``."""
    return set(_COMMAND.findall(text))


def render_runbook(version: str, available: Collection[str], reports_dir: str) -> str:
    """The runbook for ``version``; commands outside ``available`` are flagged."""
    template = resources.files("leadscore.enablement") / "templates" / "runbook.md.j2"
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    body = env.from_string(template.read_text(encoding="utf-8")).render(
        version=version,
        reports=reports_dir,
        codes={c.name: int(c) for c in ExitCode},
    )
    missing = sorted(referenced_commands(body) - set(available))
    for name in missing:
        body = re.sub(rf"(`leadscore {re.escape(name)}\b[^`]*`)", r"\1 (not in this build)", body)
    note = ""
    if missing:
        listed = ", ".join(f"`{m}`" for m in missing)
        note = (
            f"\n> **Note:** this build does not offer {listed}; the steps that use them are "
            "marked *(not in this build)*. Until they arrive, use the fallbacks given.\n"
        )
    title, _, rest = body.partition("\n")
    return f"{title}\n{note}{rest}"
