"""Crash safety with real worker processes: SIGKILL mid-job is recovered on the next start
(resume from checkpoint) until max_attempts; SIGTERM checkpoints and re-queues."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess

import pytest

from lorastrap.jobs import queue as jobs
from registry.models import utcnow


def _step(ws, job_id: int) -> int:  # type: ignore[no-untyped-def]
    path = ws.runs_dir / f"job-{job_id}" / "checkpoint.json"
    return json.loads(path.read_text())["step"] if path.is_file() else 0


def _stale(reg, ws, job_id: int) -> bool:  # type: ignore[no-untyped-def]
    beat = dt.datetime.fromisoformat(jobs.get_job(reg, job_id)["heartbeat_at"])
    return (utcnow() - beat).total_seconds() > ws.config.watch.stale_after_s + 1  # (stored to the second)


def _start_worker(lorastrap_argv, ws) -> subprocess.Popen:  # type: ignore[no-untyped-def, type-arg]
    return subprocess.Popen(lorastrap_argv(ws.root, "worker", "--once", "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def reg(watch_ws):  # type: ignore[no-untyped-def]
    r = watch_ws.open_registry()
    yield r
    r.close()


def test_sigkill_mid_job_is_recovered_and_resumed_on_restart(watch_ws, reg, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    job = jobs.enqueue(reg, "sleep", {"steps": 80, "step_s": 0.02})
    proc = _start_worker(lorastrap_argv, watch_ws)
    try:
        poll(lambda: _step(watch_ws, job["id"]) >= 5, timeout=60)
    finally:
        proc.kill()  # SIGKILL: no handler runs, no cleanup
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _step(watch_ws, job["id"])
    row = jobs.get_job(reg, job["id"])
    assert row["status"] == "running" and row["worker"].endswith(f":{proc.pid}")

    # the next start finds the stale heartbeat (stale_after_s = 1 s), re-queues and resumes it
    poll(lambda: _stale(reg, watch_ws, job["id"]), timeout=10, every=0.1)
    out = subprocess.run(lorastrap_argv(watch_ws.root, "worker", "--once", "--no-progress"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"job {job['id']} re-queued: worker" in out.stderr and "1 done" in out.stdout
    row = jobs.get_job(reg, job["id"])
    assert row["status"] == "done" and row["attempts"] == 2
    assert row["result"]["resumed_from"] >= killed_at >= 5  # resumed, not restarted


def test_a_job_that_keeps_crashing_fails_after_max_attempts(watch_ws, reg, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    job = jobs.enqueue(reg, "sleep", {"steps": 500, "step_s": 0.02}, max_attempts=1)
    proc = _start_worker(lorastrap_argv, watch_ws)
    try:
        poll(lambda: _step(watch_ws, job["id"]) >= 2, timeout=60)
    finally:
        proc.kill()
        proc.wait(10)
    poll(lambda: _stale(reg, watch_ws, job["id"]), timeout=10, every=0.1)
    out = subprocess.run(lorastrap_argv(watch_ws.root, "worker", "--once", "--no-progress"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "no jobs run" in out.stdout, out.stderr
    row = jobs.get_job(reg, job["id"])
    assert row["status"] == "failed" and "gave up after 1 attempt(s)" in row["error"]
    assert f"job {job['id']} failed: worker" in out.stderr


def test_sigterm_checkpoints_requeues_and_exits(watch_ws, reg, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    job = jobs.enqueue(reg, "sleep", {"steps": 400, "step_s": 0.02})
    proc = _start_worker(lorastrap_argv, watch_ws)
    poll(lambda: _step(watch_ws, job["id"]) >= 3, timeout=60)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SIGTERM: stopping" in out and "re-queued" in out
    row = jobs.get_job(reg, job["id"])
    assert (row["status"], row["attempts"], row["worker"]) == ("queued", 0, None)
    stopped_at = _step(watch_ws, job["id"])
    assert 3 <= stopped_at < 400


def test_cancelling_a_running_job_stops_it_and_the_worker_goes_on(watch_ws, reg, lorastrap_argv, poll) -> None:  # type: ignore[no-untyped-def]
    long = jobs.enqueue(reg, "sleep", {"steps": 1000, "step_s": 0.02})
    short = jobs.enqueue(reg, "sleep", {"steps": 2, "step_s": 0.01})
    proc = _start_worker(lorastrap_argv, watch_ws)
    poll(lambda: _step(watch_ws, long["id"]) >= 2, timeout=60)
    jobs.cancel(reg, long["id"])
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"job {long['id']} cancelled" in out and "1 cancelled, 1 done" in out
    assert _step(watch_ws, long["id"]) < 1000
    assert jobs.get_job(reg, long["id"])["status"] == "cancelled"
    assert jobs.get_job(reg, short["id"])["status"] == "done"
