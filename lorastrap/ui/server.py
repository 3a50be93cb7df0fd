"""Starting the UI server: bind, warn and print the access token off loopback, open a browser."""

from __future__ import annotations

import errno
import socket
import threading
import webbrowser
from collections.abc import Callable

from lorastrap.kernel.errors import UserError
from lorastrap.ui.security import Guard
from lorastrap.workspace import Workspace


_BIND_ADVICE = {
    errno.EADDRINUSE: "the port is already in use (another `lorastrap ui` or another program); choose another --port",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's; choose another --host",
    errno.EACCES: "permission denied (ports below 1024 need root); choose another --port",
}


def _bind(host: str, port: int) -> socket.socket:
    """The server's socket, bound here and handed to uvicorn: uvicorn reports a port it cannot bind
    with its own log line and exits (after starting the app), which is not lorastrap's one line."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    # as uvicorn does: a restarted UI rebinds while the old one's connections are in TIME_WAIT
    # (a port another socket listens on still refuses the bind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror):
            advice = f"the host name does not resolve ({exc.strerror or exc}); choose another --host"
        else:
            advice = _BIND_ADVICE.get(exc.errno or -1) or f"{exc.strerror or exc}; choose another --port or --host"
        raise UserError(f"cannot serve on {where}: {advice}") from None
    return sock


def serve(ws: Workspace, host: str = "127.0.0.1", port: int = 7860, *, open_browser: bool = False,
          run_worker: bool = True, echo: Callable[[str], None] = print) -> None:
    """Serve the workspace until Ctrl-C (a running job checkpoints and goes back to the queue)."""
    import uvicorn

    from lorastrap.ui.app import create_app

    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535 (got {port})")
    sock = _bind(host, port)  # before anything starts or says it serves
    try:
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
        server.run(sockets=[sock])
    finally:
        sock.close()
