"""Job kinds: a registry of handlers `{kind: handler(ws, payload, progress) -> result dict}`.

A worker only claims the kinds it has handlers for, so a machine without a GPU can run a worker
for light kinds while GPU machines take "train". Built in:
- "train": trains a LoRA through `lorastrap.method.train.train_character_lora` (checkpoints on
  interrupt, resumes from its run folder);
- "bootstrap": the next step of the method, exactly `lorastrap bootstrap` (the web UI queues it),
  with progress: phase, step, loss, ETA;
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

from lorastrap.kernel.atomic import atomic_write_text
from lorastrap.kernel.errors import UserError

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

    def __call__(self, done: int, total: int | None = None, note: str = "", *, bar: bool = True,
                 info: dict[str, Any] | None = None) -> None:
        """Report progress (`bar=False`: the handler draws its own bar; `info`: more JSON-safe
        fields for the snapshot, e.g. phase, loss, ETA); raises JobInterrupted when the job was
        asked to stop."""
        with self._lock:
            self._snapshot = {**(info or {}), "done": done, "total": total, "note": note, "at": time.time()}
        if self._show_bar and bar:
            if self._bar is None:
                from lorastrap.kernel.progress import progress_bar

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
    from lorastrap.method.step import train_version
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


@register_kind("bootstrap")
def run_bootstrap(ws: Any, payload: dict[str, Any], progress: JobProgress) -> dict[str, Any]:
    """The next step of the method (`lorastrap bootstrap`), as the web UI's "run the next step"."""
    from lorastrap.method.step import bootstrap_step
    from lorastrap.training.loop import TrainingInterrupted

    slug = payload["slug"]
    tracker = StepTracker(progress, _planned_steps(ws, slug))
    progress.log(f"bootstrap step of {slug}")
    try:
        step = bootstrap_step(ws, slug, auto_curate=payload.get("auto_curate"), progress=progress.show_bar,
                              on_step=tracker)
    except TrainingInterrupted as exc:
        raise JobInterrupted(str(exc)) from None
    return {"step": step.step, "messages": step.messages, "lora_id": step.lora_id,
            "sample_grid": str(step.sample_grid) if step.sample_grid else None,
            "contact_sheet": str(step.contact_sheet) if step.contact_sheet else None,
            "candidates": [str(p) for p in step.candidates], "next_command": step.next_command}


def _planned_steps(ws: Any, slug: str) -> int | None:
    """The training steps the next step will run (None when it only generates)."""
    from lorastrap.method.stage import training_kind
    from lorastrap.method.train import training_config
    from lorastrap.queries import get_character

    with ws.session(write=False) as s:
        c = get_character(s, slug)
        if c.stage in ("style_trained", "character_trained"):
            return None
        kind = training_kind(ws, s, c)
    return training_config(ws, kind).max_train_steps


class StepTracker:
    """`on_step(step, loss)` for training: progress with phase, loss and an ETA measured from the
    steps so far (model loading and caching before the first step do not count)."""

    def __init__(self, progress: JobProgress, total: int | None) -> None:
        self.progress, self.total = progress, total
        self.first: tuple[int, float] | None = None
        progress(0, total, "starting", bar=False, info={"phase": "training" if total else "generating"})

    def __call__(self, step: int, loss: float) -> None:
        now = time.monotonic()
        self.first = self.first or (step, now)
        done_since, took = step - self.first[0], now - self.first[1]
        eta = (self.total - step) * took / done_since if self.total and done_since > 0 else None
        finished = self.total is not None and step >= self.total
        self.progress(step, self.total, f"loss {loss:.4f}", bar=False, info={
            "phase": "finishing" if finished else "training", "loss": loss,
            "eta_s": None if finished or eta is None else round(eta, 1)})


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
