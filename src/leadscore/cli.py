"""The ``leadscore`` command line: one thin command per stage."""

from __future__ import annotations

import typer

app = typer.Typer(help="Point-in-time lead scoring.", no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the version."""
    from leadscore import __version__

    typer.echo(__version__)
