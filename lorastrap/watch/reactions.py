"""What a settled change does: snapshot curated/ (or import an inbox drop) and queue training.

Shared by the watcher (event-driven) and `lorastrap watch --once` (a catch-up pass). The dataset
and character services do the work; this module only decides when to queue a job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorastrap.jobs.manage import enqueue_training
from lorastrap.kernel.errors import UserError
from lorastrap.method.curation import sync_curated
from lorastrap.queries import get_character
from lorastrap.watch.inbox import TAGS_FILE, import_drop, loose_files, pending_drops
from lorastrap.watch.settle import Settler
from lorastrap.workspace import Workspace
from registry.db import Registry
from registry.models import Character

log = logging.getLogger("lorastrap.watch")


class Reporter:
    """Messages for the person watching; `once` says a thing only the first time."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self.emit = emit
        self._said: set[Hashable] = set()

    def say(self, message: str) -> None:
        log.info(message)
        if self.emit is not None:
            self.emit(message)

    def once(self, key: Hashable, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.say(message)


def character_slugs(reg: Registry) -> list[str]:
    with reg.session(write=False) as s:
        return list(s.scalars(select(Character.slug).order_by(Character.slug)))


def _job_line(job: dict[str, Any]) -> str:
    p = job["payload"]
    line = f"queued job {job['id']}: train {p['kind']} LoRA of {p['slug']} on dataset v{p['dataset_version']}"
    if job.get("superseded"):
        line += f" (supersedes job {', '.join(map(str, job['superseded']))})"
    return line


def on_curated_settled(ws: Workspace, reg: Registry, slug: str, report: Reporter,
                       changed_since: Callable[[], bool] | None = None) -> dict[str, Any] | None:
    """Snapshot a character's curated/; queue a job only when the content changed.
    `changed_since()`: did the folder change while it was read (a copy started meanwhile)?"""
    if not ws.curated_dir(slug).is_dir():
        report.once(("no-curated", slug), f"{slug}: {ws.curated_dir(slug)} is missing; create it to curate")
        return None
    try:
        result = sync_curated(ws, slug)
    except UserError as exc:  # a corrupt or tiny image: say so, keep watching; the next change retries
        if changed_since is not None and changed_since():
            log.info("%s: curated/ changed while it was read (%s); reading it again once settled", slug, exc)
        else:
            report.say(f"{slug}: curated/ not snapshotted: {exc}")
        return None
    for name in result.ignored:
        report.once(("ignored", slug, name), f"{slug}: ignoring curated/{name}: not an image")
    if not result.created or result.version is None:
        return _requeue_lost_version(ws, reg, slug, report)
    parts = [f"+{len(result.added)}" if result.added else "", f"-{len(result.removed)}" if result.removed else ""]
    change = " ".join(p for p in parts if p)
    report.say(f"{slug}: dataset v{result.version} ({result.total} items{', ' + change if change else ''})")
    job = enqueue_training(ws, reg, slug, result.version)
    report.say(_job_line(job))
    return job


def _requeue_lost_version(ws: Workspace, reg: Registry, slug: str, report: Reporter) -> dict[str, Any] | None:
    """A crash between the snapshot's commit and the enqueue leaves a curated version that no job
    and no LoRA covers; the next settle (or `watch --once`) queues it then."""
    from lorastrap.dataset.versions import latest_version
    from registry.models import Job, Lora

    with reg.session(write=False) as s:
        character = get_character(s, slug)
        version = latest_version(s, character)
        if version is None or version.note != "curated":
            return None
        trained = s.scalars(select(Lora.id).where(Lora.dataset_version_id == version.id)).first()
        jobbed = any(j.payload.get("dataset_version") == version.number
                     for j in s.scalars(select(Job).where(Job.character_id == character.id)))
        number = version.number
    if trained is not None or jobbed:
        return None
    job = enqueue_training(ws, reg, slug, number)
    report.say(f"{slug}: dataset v{number} had no training job (interrupted earlier); " + _job_line(job))
    return job


def on_drop_settled(ws: Workspace, reg: Registry, folder: Path, report: Reporter) -> dict[str, Any] | None:
    """Import one inbox drop; queue the new character's first training when configured."""
    outcome = import_drop(ws, folder)
    for name in outcome.ignored:
        report.once(("ignored-drop", folder.name, name), f"inbox/{folder.name}: ignoring {name}: not an image")
    if outcome.status == "rejected":
        report.say(f"inbox/{outcome.name}: rejected: {outcome.reason} (moved to {ws.rel(outcome.moved_to)})")  # type: ignore[arg-type]
        return None
    if outcome.status != "imported" or outcome.added is None:
        return None
    added = outcome.added
    report.say(f"inbox/{outcome.name}: new character {added.slug} (trigger {added.trigger}, dataset "
               f"v{added.dataset_version}); the drop is kept in {ws.rel(outcome.moved_to)}")  # type: ignore[arg-type]
    if not ws.config.watch.train_on_import:
        return None
    job = enqueue_training(ws, reg, added.slug, added.dataset_version)
    report.say(_job_line(job))
    return job


def report_loose_files(ws: Workspace, report: Reporter) -> None:
    for path in loose_files(ws):
        report.once(("loose", path.name), f"inbox/{path.name}: ignored; put each character's images "
                    f"and {TAGS_FILE} in a folder inbox/<name>/")


def catch_up(ws: Workspace, reg: Registry, report: Reporter, *, timeout_s: float = 600.0,
             stop: threading.Event | None = None) -> list[dict[str, Any]]:
    """`watch --once`: import settled inbox drops, snapshot every character's curated/ (each once
    its files are stable), and return the jobs queued. Folders still changing after `timeout_s`
    are left for the next run."""
    settler = Settler(ws.config.watch)
    for folder in pending_drops(ws):
        settler.add(("inbox", folder.name), folder)
    for slug in character_slugs(reg):
        settler.add(("curated", slug), ws.curated_dir(slug))
    report_loose_files(ws, report)
    queued: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    stop = stop or threading.Event()
    while settler.pending() and time.monotonic() < deadline and not stop.is_set():
        for kind, name in settler.poll():  # type: ignore[misc]
            if kind == "inbox":
                job = on_drop_settled(ws, reg, ws.inbox_dir / name, report)
            else:
                job = on_curated_settled(ws, reg, name, report)
            if job is not None:
                queued.append(job)
        wait = settler.next_wait()
        if wait:
            stop.wait(min(wait, max(0.0, deadline - time.monotonic())))
    if settler.pending():
        report.say("some folders were still changing; run `lorastrap watch --once` again later")
    return queued
