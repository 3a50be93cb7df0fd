"""The job queue on a real registry: state changes, supersede, stale recovery, atomic claims
(SQLite and a real PostgreSQL server), and the in-process worker (handlers, cancel, stop/resume)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time

import pytest
from sqlalchemy import select

from lorastrap.jobs import queue as jobs
from lorastrap.jobs.kinds import register_kind, unregister_kind
from lorastrap.jobs.worker import Worker
from lorastrap.kernel.errors import Conflict, NotFound
from registry.db import open_registry
from registry.models import Character, utcnow


@pytest.fixture
def reg(watch_ws):  # type: ignore[no-untyped-def]
    r = watch_ws.open_registry()
    yield r
    r.close()


def test_lifecycle_and_guards(reg) -> None:  # type: ignore[no-untyped-def]
    a = jobs.enqueue(reg, "sleep", {"steps": 1})
    b = jobs.enqueue(reg, "sleep", {"steps": 2})
    got = jobs.claim(reg, "w1", ["sleep"])
    assert got["id"] == a["id"] and got["status"] == "running" and got["attempts"] == 1 and got["worker"] == "w1"
    assert jobs.claim(reg, "w2", ["train"]) is None  # kind filter
    assert not jobs.heartbeat(reg, a["id"], "w2")  # not w2's job
    assert jobs.heartbeat(reg, a["id"], "w1", {"done": 1, "total": 2})
    assert jobs.get_job(reg, a["id"])["result"]["progress"]["done"] == 1
    assert jobs.finish(reg, a["id"], "w1", {"ok": True})
    assert not jobs.fail(reg, a["id"], "w1", "late")  # done stays done
    assert jobs.get_job(reg, a["id"])["status"] == "done"
    with pytest.raises(Conflict):
        jobs.cancel(reg, a["id"])
    with pytest.raises(Conflict):
        jobs.retry(reg, b["id"])  # queued: nothing to retry
    assert jobs.cancel(reg, b["id"])["status"] == "cancelled"
    again = jobs.retry(reg, b["id"])
    assert (again["status"], again["attempts"], again["error"]) == ("queued", 0, None)
    with pytest.raises(NotFound):
        jobs.get_job(reg, 999)
    assert [j["id"] for j in jobs.list_jobs(reg)] == [b["id"], a["id"]]
    assert [j["id"] for j in jobs.list_jobs(reg, status="done")] == [a["id"]]


def test_a_newer_change_supersedes_the_queued_job_not_the_running_one(reg, watch_ws, seed_image) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.characters import add_character

    add_character(watch_ws, "kitsune", [seed_image], "1girl, fox ears")
    other = jobs.enqueue(reg, "train", {"v": 1}, character_id=None)  # not this character's: untouched
    with reg.session() as s:
        char_id = s.scalars(select(Character.id)).one()
    running = jobs.enqueue(reg, "train", {"v": 1}, character_id=char_id, supersede=True)
    jobs.claim(reg, "w", ["train"])  # takes the oldest: other
    jobs.claim(reg, "w", ["train"])  # takes `running`
    queued = jobs.enqueue(reg, "train", {"v": 2}, character_id=char_id, supersede=True)
    newest = jobs.enqueue(reg, "train", {"v": 3}, character_id=char_id, supersede=True)
    assert newest["superseded"] == [queued["id"]]
    old = jobs.get_job(reg, queued["id"])
    assert old["status"] == "cancelled" and old["error"] == f"superseded by job {newest['id']}"
    assert jobs.get_job(reg, running["id"])["status"] == "running"
    assert jobs.get_job(reg, other["id"])["status"] == "running"
    assert jobs.get_job(reg, newest["id"])["character"] == "kitsune"


def test_stale_running_jobs_are_requeued_then_failed(reg) -> None:  # type: ignore[no-untyped-def]
    j = jobs.enqueue(reg, "sleep", {}, max_attempts=2)
    jobs.claim(reg, "dead", ["sleep"])
    assert jobs.requeue_stale(reg, 60) == []  # fresh heartbeat
    later = utcnow() + dt.timedelta(seconds=120)
    [back] = jobs.requeue_stale(reg, 60, now=later)
    assert back["status"] == "queued" and back["worker"] is None and "dead stopped responding" in back["error"]
    assert jobs.claim(reg, "dead2", ["sleep"])["attempts"] == 2
    [failed] = jobs.requeue_stale(reg, 60, now=utcnow() + dt.timedelta(seconds=120))
    assert failed["status"] == "failed" and "gave up after 2 attempt(s)" in failed["error"]
    assert jobs.get_job(reg, j["id"])["status"] == "failed"


def _claim_race(url: str, n_workers: int, n_jobs: int) -> dict[str, list[int]]:
    """n_workers threads, each with its own engine, claim until the queue is empty."""
    with open_registry(url) as r:
        for i in range(n_jobs):
            jobs.enqueue(r, "sleep", {"i": i})
    taken: dict[str, list[int]] = {}
    start = threading.Barrier(n_workers)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with open_registry(url, migrate=False) as r:
                start.wait()
                mine = taken.setdefault(name, [])
                while (job := jobs.claim(r, name, ["sleep"])) is not None:
                    mine.append(job["id"])
                    time.sleep(0.002)  # "run" it: lets the other workers in, as real work does
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return taken


def _assert_disjoint(url: str, taken: dict[str, list[int]], n_jobs: int) -> None:
    all_ids = [i for ids in taken.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == n_jobs  # nobody took a job twice, none left behind
    assert sum(1 for ids in taken.values() if ids) >= 2  # the race really happened
    with open_registry(url, migrate=False) as r:
        rows = jobs.list_jobs(r, limit=n_jobs + 10)
    assert {j["status"] for j in rows} == {"running"} and {j["attempts"] for j in rows} == {1}
    owner = {i: w for w, ids in taken.items() for i in ids}
    assert all(j["worker"] == owner[j["id"]] for j in rows)


def test_two_workers_never_take_the_same_job_sqlite(watch_ws) -> None:  # type: ignore[no-untyped-def]
    taken = _claim_race(watch_ws.database_url, 4, 120)
    _assert_disjoint(watch_ws.database_url, taken, 120)


_pg_names = itertools.count()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    pgserver = pytest.importorskip("pgserver", reason="pgserver wheel not installed (pip install -e .[test])")
    pytest.importorskip("psycopg2", reason="psycopg2 not installed (pip install -e .[postgres])")
    try:
        server = pgserver.get_server(tmp_path_factory.mktemp("pgjobs"), cleanup_mode="stop")
    except Exception as exc:  # no binaries for this platform, no shared memory, ...
        pytest.skip(f"cannot start a PostgreSQL server here: {exc.__class__.__name__}: {exc}")
    yield server
    server.cleanup()


def test_two_workers_never_take_the_same_job_postgresql(pg_server) -> None:  # type: ignore[no-untyped-def]
    name = f"lorastrap_jobs{next(_pg_names)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    url = pg_server.get_uri(name)
    taken = _claim_race(url, 4, 120)
    _assert_disjoint(url, taken, 120)


# -- the worker, in-process ------------------------------------------------------------------------
def test_worker_runs_jobs_and_keeps_going_after_a_failure(watch_ws, reg) -> None:  # type: ignore[no-untyped-def]
    calls: list[dict] = []  # type: ignore[type-arg]

    def echo(ws, payload, progress):  # type: ignore[no-untyped-def]
        progress(1, 1)
        calls.append(payload)
        return {"echo": payload["x"]}

    register_kind("echo", echo)
    try:
        bad = jobs.enqueue(reg, "sleep", {"steps": 3, "step_s": 0.01, "fail_at": 1})
        good = jobs.enqueue(reg, "echo", {"x": 7})
        unknown = jobs.enqueue(reg, "nobody-handles-this", {})
        said: list[str] = []
        summary = Worker(watch_ws, reg, emit=said.append, show_progress=False).run(drain=True)
    finally:
        unregister_kind("echo")
    assert summary == {"failed": 1, "done": 1}
    failed = jobs.get_job(reg, bad["id"])
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: sleep job told to fail at step 1"
    log_text = watch_ws.abs(failed["log_path"]).read_text()
    assert "Traceback" in log_text and "told to fail" in log_text and f"job {bad['id']} started" in log_text
    assert jobs.get_job(reg, good["id"])["result"] == {"echo": 7} and calls == [{"x": 7}]
    assert jobs.get_job(reg, unknown["id"])["status"] == "queued"  # not claimed by a worker without its kind
    assert any("failed: RuntimeError" in line for line in said)


def test_cancel_stops_a_running_job_and_stop_requeues_it_for_resume(watch_ws, reg, poll) -> None:  # type: ignore[no-untyped-def]
    ws = watch_ws
    first = jobs.enqueue(reg, "sleep", {"steps": 400, "step_s": 0.01})
    w = Worker(ws, reg, show_progress=False)
    t = threading.Thread(target=w.run, kwargs={"drain": True})
    t.start()
    poll(lambda: (jobs.get_job(reg, first["id"])["result"].get("progress") or {}).get("done", 0) >= 3)
    jobs.cancel(reg, first["id"])
    t.join(10)
    assert not t.is_alive()
    row = jobs.get_job(reg, first["id"])
    assert row["status"] == "cancelled" and row["error"] == "cancelled by user"
    checkpoint = ws.runs_dir / f"job-{first['id']}" / "checkpoint.json"
    assert 3 <= json.loads(checkpoint.read_text())["step"] < 400  # stopped early

    second = jobs.enqueue(reg, "sleep", {"steps": 60, "step_s": 0.02})
    w2 = Worker(ws, reg, show_progress=False)
    t = threading.Thread(target=w2.run)
    t.start()
    ckpt = ws.runs_dir / f"job-{second['id']}" / "checkpoint.json"
    poll(ckpt.is_file)
    w2.request_stop("test stop")
    t.join(10)
    row = jobs.get_job(reg, second["id"])
    assert (row["status"], row["attempts"], row["worker"]) == ("queued", 0, None)  # a clean stop is no attempt
    assert "resumes from its checkpoint" in row["error"]
    assert Worker(ws, reg, show_progress=False).run(drain=True) == {"done": 1}
    row = jobs.get_job(reg, second["id"])
    assert row["status"] == "done" and row["attempts"] == 1 and row["result"]["resumed_from"] >= 1
