"""`lorastrap ui` as a user starts it: a real process binding a real port on loopback.

lorastrap binds the socket itself and hands it to uvicorn, so a port it cannot have is one line
of ours (uvicorn's own failure is a log line and exit 3, after the app has started)."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request


def test_a_port_in_use_or_an_address_elsewhere_is_a_one_line_error_naming_it(
        workspace, lorastrap_argv) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run(lorastrap_argv(workspace.root, "ui", "--port", str(port), "--no-worker"),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [f"error: cannot serve on 127.0.0.1:{port}: the port is already in use (another "
                     "`lorastrap ui` or another program); choose another --port"], r.stderr
    assert "lorastrap ui: http" not in r.stdout  # it never said it was serving

    # 192.0.2.0/24 is reserved for documentation (RFC 5737): never an address of this machine
    r = subprocess.run(lorastrap_argv(workspace.root, "ui", "--host", "192.0.2.7", "--port", str(port)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip() == (f"error: cannot serve on 192.0.2.7:{port}: that address is not one of "
                                "this machine's; choose another --host"), r.stderr


def test_the_ui_serves_on_the_socket_it_bound_and_stops_on_ctrl_c(
        workspace, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(lorastrap_argv(workspace.root, "ui", "--port", str(port), "--no-worker"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def answers() -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                return page.status
        except OSError:
            return None

    try:
        assert poll(answers, timeout=60, every=0.1) == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert f"lorastrap ui: http://127.0.0.1:{port}/" in out, err
    assert "Traceback" not in err
