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

_COMMAND = re.compile(r"\bleadscore ([a-z][a-z-]*)\b")
MARK = "not in this build"


def referenced_commands(text: str) -> set[str]:
    """Top-level command names a text uses as ``leadscore <name>``."""
    return set(_COMMAND.findall(text))


def mark_missing(text: str, missing: Collection[str]) -> str:
    """Flag each use of a missing command: after its inline code span, or as a shell comment
    on its line in a code block."""
    lines, in_code = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        for name in missing:
            use = rf"\bleadscore {re.escape(name)}\b"
            if in_code and re.search(use, line):
                line += f"  # {MARK}"
            elif not in_code:
                line = re.sub(rf"(`[^`]*{use}[^`]*`)", rf"\1 *({MARK})*", line)
        lines.append(line)
    return "\n".join(lines)


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
    body = mark_missing(body, missing)
    note = ""
    if missing:
        listed = ", ".join(f"`{m}`" for m in missing)
        note = (
            f"\n> **Note:** this build does not offer {listed}; the steps that use them are "
            f"marked *({MARK})*. Until they arrive, use the fallbacks given.\n"
        )
    title, _, rest = body.partition("\n")
    return f"{title}\n{note}{rest}"
