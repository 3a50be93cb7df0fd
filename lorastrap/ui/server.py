"""Starting the UI server: bind, warn and print the access token off loopback, open a browser."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable

from lorastrap.kernel.errors import UserError
from lorastrap.ui.security import Guard
from lorastrap.workspace import Workspace


def serve(ws: Workspace, host: str = "127.0.0.1", port: int = 7860, *, open_browser: bool = False,
          run_worker: bool = True, echo: Callable[[str], None] = print) -> None:
    """Serve the workspace until Ctrl-C (a running job checkpoints and goes back to the queue)."""
    import uvicorn

    from lorastrap.ui.app import create_app

    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535 (got {port})")
    guard = Guard.for_bind(host, port)
    app = create_app(ws, guard, run_worker=run_worker)
    if not guard.local:
        echo(f"warning: serving on {host}, reachable from other machines. Anyone with the token can "
             "change this workspace; use it only on a network you trust.")
        echo(f"access token: {guard.access_token}  (from another machine, open this address with "
             "this machine's name or IP in place of 127.0.0.1)")
    echo(f"lorastrap ui: {guard.url()}  (workspace {ws.root}; Ctrl-C stops)")
    echo("jobs run in this process" if run_worker else
         "jobs are queued for `lorastrap worker` (started with --no-worker)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, [guard.url()]).start()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as exc:  # port taken, address not on this machine
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port or --host") from None
