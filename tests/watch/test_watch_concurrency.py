"""`lorastrap watch` as a real process on the SQLite registry while CLI commands write to it:
both succeed (no "database is locked"); SIGINT stops the watcher cleanly."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading

from lorastrap.jobs import queue as jobs


def test_cli_writes_while_the_watcher_runs(watch_ws, seed_image, make_png, cli_run, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    assert cli_run("character", "add", "kitsune", "--image", str(seed_image), "--tags", "1girl, fox ears").code == 0
    proc = subprocess.Popen(lorastrap_argv(watch_ws.root, "watch", "--no-worker", "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        poll(lambda: proc.poll() is not None or any("Ctrl-C stops" in line for line in lines), timeout=60)
        assert proc.poll() is None, lines
        curated = watch_ws.curated_dir("kitsune")
        with watch_ws.open_registry() as reg:
            for i in range(6):
                # the watcher snapshots curated/ and queues jobs while the CLI writes
                shutil.copyfile(make_png(f"c{i}.png", hue=20 * i), curated / f"c{i}.png")
                r = cli_run("character", "add", f"extra{i}", "--image", str(make_png(f"e{i}.png", hue=7 * i)),
                            "--tags", "1boy, solo")
                assert r.code == 0, r.err
                assert cli_run("tags", "add", "kitsune", f"tag{i}").code == 0
                assert cli_run("jobs", "list", "--json").code == 0
            # the watcher picked up the new characters and queued kitsune's training
            poll(lambda: any(j["character"] == "kitsune" for j in jobs.list_jobs(reg)), timeout=30)
            for i in range(6):
                shutil.copyfile(make_png(f"x{i}.png", hue=100 + i), watch_ws.curated_dir(f"extra{i}") / "x.png")
            poll(lambda: {j["character"] for j in jobs.list_jobs(reg, limit=100)} >=
                 {"kitsune", *(f"extra{i}" for i in range(6))}, timeout=60)
            assert proc.poll() is None  # still running
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "database is locked" not in err and "Traceback" not in err
    assert "stopped watching" in err and "watching characters/extra5/curated" in err
