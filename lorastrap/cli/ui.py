"""`lorastrap ui`."""

from __future__ import annotations

import click

from lorastrap.cli.common import pass_app


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback prints a warning and an access token every request must carry.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option("--no-worker", is_flag=True,
              help="Do not run queued jobs in this process (a `lorastrap worker` elsewhere runs them).")
@pass_app
def ui_cmd(app, port: int, host: str, open_browser: bool, no_worker: bool) -> None:  # type: ignore[no-untyped-def]
    """A local web page: curate candidates by view (keyboard K/X/U), run the next step, see the lineage."""
    from lorastrap.ui.server import serve

    serve(app.workspace(), host, port, open_browser=open_browser, run_worker=not no_worker, echo=click.echo)
