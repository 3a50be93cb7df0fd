"""Job kinds: a registry of handlers `{kind: handler(ws, payload, progress) -> result dict}`.

A worker only claims the kinds it has handlers for, so a machine without a GPU can run a worker
for light kinds while GPU machines take "train". Built in:
- "train": trains a LoRA through `lorastrap.train_runs.train_character_lora` (checkpoints on
  interrupt, resumes from its run folder);
- "sleep": sleeps in small steps with a checkpoint per step — a smoke test for a worker set-up
  (signals, heartbeats, resume) that needs no model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorastrap.errors import UserError
from registry.atomic import atomic_write_text

log = logging.getLogger("lorastrap.jobs")


class JobInterrupted(KeyboardInterrupt):
    """Raised inside a handler when its job must stop (shutdown or cancel).

    A KeyboardInterrupt on purpose: code that checkpoints on Ctrl-C does the same here, and
    `except Exception` in a handler does not swallow it."""


class JobProgress:
    """What a handler gets besides its payload: progress reporting, a stop check, a run folder."""

    def __init__(self, job: dict[str, Any], run_dir: Path, *, show_bar: bool = True) -> None:
        self.job_id: int = job["id"]
        self.attempt: int = job["attempts"]
        self.run_dir = run_dir
        self.stop_event = threading.Event()
        self._show_bar = show_bar
        self._bar: Any = None
        self._snapshot: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int | None = None, note: str = "", *, bar: bool = True) -> None:
        """Report progress (`bar=False`: the handler draws its own bar); raises JobInterrupted
        when the job was asked to stop."""
        with self._lock:
            self._snapshot = {"done": done, "total": total, "note": note, "at": time.time()}
        if self._show_bar and bar:
            if self._bar is None:
                from lorastrap.progress import progress_bar

                self._bar = progress_bar(total, f"job {self.job_id}", "step", leave=False)
            if total is not None and self._bar.total != total:
                self._bar.total = total
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(max(0, done - self._bar.n))
        self.check()

    @property
    def show_bar(self) -> bool:
        return self._show_bar

    @property
    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    def check(self) -> None:
        if self.stop_event.is_set():
            raise JobInterrupted(f"job {self.job_id} asked to stop")

    def snapshot(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self._snapshot) if self._snapshot else None

    def log(self, message: str) -> None:
        log.info("job %s: %s", self.job_id, message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


Handler = Callable[[Any, dict[str, Any], JobProgress], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def register_kind(kind: str, handler: Handler | None = None) -> Any:
    """Register a handler (or decorate one: `@register_kind(name)`); replaces an earlier one."""

    def add(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return add(handler) if handler is not None else add


def unregister_kind(kind: str) -> None:
    _HANDLERS.pop(kind, None)


def known_kinds() -> list[str]:
    return sorted(_HANDLERS)


def handler_for(kind: str) -> Handler:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise UserError(f"no handler for job kind {kind!r} in this worker; known: {', '.join(known_kinds())}") from None


def plain_result(value: Any) -> dict[str, Any]:
    """A JSON-safe dict from what a handler or service returned (dict, dataclass, other)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        value = {"value": value}
    return json.loads(json.dumps(value, default=str))


@register_kind("train")
def run_train(ws: Any, payload: dict[str, Any], progress: JobProgress) -> dict[str, Any]:
    from lorastrap.bootstrap import train_version
    from lorastrap.training.loop import TrainingInterrupted

    progress.log(f"training {payload['kind']} LoRA of {payload['slug']} on dataset v{payload.get('dataset_version')}")
    try:
        # The method's own step: lineage (parent, round, init-from) and stage, as `bootstrap` does.
        step = train_version(
            ws, payload["slug"], payload.get("dataset_version"), progress=progress.show_bar,
            on_step=lambda step, loss: progress(step, None, f"loss {loss:.4f}", bar=False))
    except TrainingInterrupted as exc:  # it checkpointed: to the worker this is a stop, not a failure
        raise JobInterrupted(str(exc)) from None
    return {**plain_result(step.trained), "messages": step.messages,
            "candidates": [str(p) for p in step.candidates]}


@register_kind("sleep")
def run_sleep(ws: Any, payload: dict[str, Any], progress: JobProgress) -> dict[str, Any]:
    steps = int(payload.get("steps", 10))
    step_s = float(payload.get("step_s", 0.1))
    fail_at = payload.get("fail_at")
    checkpoint = progress.run_dir / "checkpoint.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.is_file() else 0
    if start:
        progress.log(f"resuming from step {start}")
    for step in range(start, steps):
        progress(step, steps, "sleeping")
        if fail_at is not None and step == int(fail_at):
            raise RuntimeError(f"sleep job told to fail at step {step}")
        time.sleep(step_s)
        atomic_write_text(checkpoint, json.dumps({"step": step + 1}))
    progress(steps, steps)
    return {"steps": steps, "resumed_from": start}
