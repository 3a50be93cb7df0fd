"""The worker: claims jobs one at a time (the GPU is exclusive), runs their handlers, heartbeats.

Stopping: SIGINT/SIGTERM set a stop flag; a running handler gets a KeyboardInterrupt (in the main
thread) or a JobInterrupted from its next progress call, checkpoints, and the job goes back to the
queue to resume. A job cancelled by the user is stopped the same way when the heartbeat notices.
A crash (kill -9) leaves a running row whose heartbeat goes stale; `requeue_stale` recovers it.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lorastrap.config import WatchSettings
from lorastrap.jobs import queue as jobs
from lorastrap.jobs.kinds import JobProgress, handler_for, known_kinds
from registry.db import Registry

log = logging.getLogger("lorastrap.worker")
Emit = Callable[[str], None]


def default_worker_name(suffix: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


def describe(job: dict[str, Any]) -> str:
    p = job["payload"]
    if job["kind"] == jobs.TRAIN_KIND:
        return f"train {p.get('kind')} LoRA of {job['character']} on dataset v{p.get('dataset_version')}"
    return job["kind"] + (f" ({job['character']})" if job["character"] else "")


class Worker:
    def __init__(self, ws: Any, reg: Registry, *, name: str | None = None, kinds: Iterable[str] | None = None,
                 settings: WatchSettings | None = None, emit: Emit | None = None, show_progress: bool = True) -> None:
        self.ws = ws
        self.reg = reg
        self.name = name or default_worker_name()
        self.kinds = list(kinds) if kinds is not None else None
        self.settings = settings or ws.config.watch
        self.emit = emit
        self.show_progress = show_progress
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.stop_reason: str | None = None
        # Re-entrant: the signal handler runs in the main thread, possibly while it holds the lock.
        self._lock = threading.RLock()
        self._progress: JobProgress | None = None
        self._in_handler = False
        self._job_stop_reason: str | None = None  # "cancelled" | "lost" | "shutdown" for the current job
        self._interrupt_pending = False
        self._signals_installed = False

    def say(self, message: str) -> None:
        log.info(message)
        if self.emit is not None:
            self.emit(message)

    # -- control (any thread) ----------------------------------------------------------------------
    def wake(self) -> None:
        self.wake_event.set()

    def request_stop(self, reason: str = "stop requested") -> None:
        self.stop_reason = self.stop_reason or reason
        self.stop_event.set()
        self.wake_event.set()
        self._stop_current("shutdown")

    def _stop_current(self, reason: str, *, interrupt_main: bool = False) -> None:
        with self._lock:
            if self._progress is None:
                return
            self._job_stop_reason = self._job_stop_reason or reason
            self._progress.stop_event.set()
            # A handler that never calls progress (a long training step) still has to stop: in the
            # main thread, deliver a SIGINT that our own handler turns into KeyboardInterrupt there.
            if interrupt_main and self._in_handler and self._signals_installed:
                self._interrupt_pending = True
                _thread.interrupt_main(signal.SIGINT)

    # -- signals (main thread only) --------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        with self._lock:
            synthetic, self._interrupt_pending = self._interrupt_pending, False
            in_handler = self._in_handler
        if not synthetic:
            name = signal.Signals(signum).name
            if not self.stop_event.is_set():
                self.say(f"{name}: stopping" + (" after checkpointing the running job" if in_handler else ""))
            self.request_stop(f"stopped by {name}")
        if in_handler:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Install SIGINT/SIGTERM handlers while inside (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._signals_installed = True
        try:
            yield
        finally:
            self._signals_installed = False
            for sig, handler in old.items():
                signal.signal(sig, handler)

    # -- the loop ----------------------------------------------------------------------------------------
    def requeue_stale(self) -> list[dict[str, Any]]:
        changed = jobs.requeue_stale(self.reg, self.settings.stale_after_s)
        for job in changed:
            verb = "re-queued" if job["status"] == "queued" else "failed"
            self.say(f"job {job['id']} {verb}: {job['error']}")
        return changed

    def run(self, *, drain: bool = False, max_jobs: int | None = None) -> dict[str, int]:
        """Run jobs until stopped; with `drain`, exit once no claimable job is left."""
        summary: dict[str, int] = {}
        last_stale = 0.0
        while not self.stop_event.is_set():
            if time.monotonic() - last_stale >= self.settings.stale_after_s / 2:
                self.requeue_stale()
                last_stale = time.monotonic()
            outcome = self.run_one()
            if outcome is None:
                if drain:
                    break
                # Jobs queued by this process wake us at once; the timeout catches jobs queued by
                # other processes (CLI, another machine on a shared registry).
                self.wake_event.wait(self.settings.poll_s)
                self.wake_event.clear()
                continue
            summary[outcome] = summary.get(outcome, 0) + 1
            if max_jobs is not None and sum(summary.values()) >= max_jobs:
                break
        return summary

    def run_one(self) -> str | None:
        """Claim and run one job. Returns its outcome, or None when no job was claimable."""
        if self.stop_event.is_set():
            return None
        job = jobs.claim(self.reg, self.name, self.kinds if self.kinds is not None else known_kinds())
        if job is None:
            return None
        log_file = self.ws.state_dir / "logs" / f"job-{job['id']}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        jobs.set_log_path(self.reg, job["id"], self.ws.rel(log_file))
        progress = JobProgress(job, self.ws.runs_dir / f"job-{job['id']}", show_bar=self.show_progress)
        progress.run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with _job_log(log_file):
            self.say(f"job {job['id']} started: {describe(job)} (attempt {job['attempts']}/{job['max_attempts']}, "
                      f"worker {self.name})")
            with self._heartbeat(job, progress):
                outcome, result, error = self._execute(job, progress)
            progress.close()
            return self._record(job, outcome, result, error, time.monotonic() - t0)

    def _execute(self, job: dict[str, Any], progress: JobProgress) -> tuple[str, dict[str, Any], str]:
        try:
            with self._lock:
                self._progress, self._in_handler, self._job_stop_reason = progress, True, None
                if self.stop_event.is_set():
                    progress.stop_event.set()
                    self._job_stop_reason = "shutdown"
            try:
                with self.ws.unit(self.reg) as ws:  # the job's services share the worker's registry
                    result = handler_for(job["kind"])(ws, job["payload"], progress)
            finally:
                with self._lock:
                    self._in_handler = False
            return "done", result or {}, ""
        except KeyboardInterrupt as exc:
            if self._job_stop_reason is None:  # a signal the handler caught itself (training does)
                self.request_stop("interrupted")
            return self._job_stop_reason or "shutdown", {}, str(exc)
        except Exception as exc:  # the job fails, the worker goes on
            log.error("job %s failed:\n%s", job["id"], traceback.format_exc())
            return "failed", {}, f"{exc.__class__.__name__}: {exc}"
        finally:
            with self._lock:
                # a synthetic SIGINT the handler's own signal handler consumed must not make a
                # later real Ctrl-C look synthetic
                self._progress, self._in_handler, self._interrupt_pending = None, False, False

    def _record(self, job: dict[str, Any], outcome: str, result: dict[str, Any], error: str, took: float) -> str:
        jid = job["id"]
        if outcome == "done":
            if not jobs.finish(self.reg, jid, self.name, result):
                outcome = "cancelled"
                self.say(f"job {jid} finished after it was cancelled or re-queued; result not recorded")
            else:
                self.say(f"job {jid} done in {took:.1f} s")
        elif outcome == "failed":
            jobs.fail(self.reg, jid, self.name, error)
            self.say(f"job {jid} failed: {error}")
        elif outcome == "shutdown":
            why = error or self.stop_reason or "stopped"
            jobs.release(self.reg, jid, self.name, f"interrupted ({why}); resumes from its checkpoint")
            outcome = "released"
            self.say(f"job {jid} interrupted and re-queued; it resumes from its checkpoint")
        elif outcome == "cancelled":
            self.say(f"job {jid} cancelled")
        else:  # lost: another worker re-queued it after our heartbeat went stale
            self.say(f"job {jid} was taken back from this worker (heartbeat too late)")
        return outcome

    @contextlib.contextmanager
    def _heartbeat(self, job: dict[str, Any], progress: JobProgress) -> Iterator[None]:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.settings.heartbeat_s):
                try:
                    if jobs.heartbeat(self.reg, job["id"], self.name, progress.snapshot()):
                        continue
                    status = jobs.get_job(self.reg, job["id"])["status"]
                except Exception as exc:  # a registry hiccup must not kill the job
                    log.warning("job %s: heartbeat failed: %s", job["id"], exc)
                    continue
                reason = "cancelled" if status == "cancelled" else "lost"
                self.say(f"job {job['id']} is {status} in the registry; stopping it")
                self._stop_current(reason, interrupt_main=True)
                return

        thread = threading.Thread(target=beat, name=f"heartbeat-{job['id']}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=30)


@contextlib.contextmanager
def _job_log(path: os.PathLike[str]) -> Iterator[None]:
    """Copy the `lorastrap` loggers' records to the job's log file while it runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lorastrap")
    old_level = root.level
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def run_worker(ws: Any, *, drain: bool = False, kinds: Iterable[str] | None = None, name: str | None = None,
               emit: Emit | None = None, show_progress: bool = True, max_jobs: int | None = None) -> dict[str, int]:
    """`lorastrap worker`: run the queue only (one worker per GPU machine on a shared registry)."""
    with ws.unit() as ws, ws.registry() as reg:
        worker = Worker(ws, reg, name=name, kinds=kinds, emit=emit, show_progress=show_progress)
        unknown = sorted(set(worker.kinds or []) - set(known_kinds()))
        if unknown:
            from lorastrap.kernel.errors import UserError

            raise UserError(f"unknown job kind(s) {', '.join(unknown)}; known: {', '.join(known_kinds())}")
        worker.say(f"worker {worker.name} running kinds {', '.join(worker.kinds or known_kinds())}"
                    + ("; exits when the queue is empty" if drain else "; Ctrl-C stops"))
        with worker.signals():
            return worker.run(drain=drain, max_jobs=max_jobs)
