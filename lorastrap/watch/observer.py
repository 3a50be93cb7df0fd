"""`lorastrap watch`: watchdog observers on every character's curated/ and on inbox/.

Threads: watchdog's observer turns inotify (or the platform's) events into `Settler.note` calls;
one settling thread waits on the settler's condition and acts on keys that settled (dataset
snapshot + job, or inbox import); the main thread runs the worker. Idle, all three block.
New characters are picked up without restart: an event on characters/ (a folder appeared)
triggers a re-listing of the registry, and so does a slow timer for characters added elsewhere.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from lorastrap.images import is_partial_name
from lorastrap.jobs.worker import Worker
from lorastrap.watch.inbox import pending_drops
from lorastrap.watch.reactions import (
    Reporter,
    catch_up,
    character_slugs,
    on_curated_settled,
    on_drop_settled,
    report_loose_files,
)
from lorastrap.watch.settle import Settler, is_relevant_name
from lorastrap.workspace import Workspace
from registry.db import Registry

log = logging.getLogger("lorastrap.watch")

# Reads (FileOpened / FileClosedNoWrite, our own hashing included) and attribute changes (touch)
# are not changes; filtering them in the kernel mask keeps an idle watcher silent.
FILE_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent, FileClosedEvent]
DIR_EVENTS = [DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
RESCAN: Hashable = ("rescan", "")


class _Dispatch(FileSystemEventHandler):
    def __init__(self, callback: Callable[[FileSystemEvent], None]) -> None:
        self.callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.callback(event)
        except Exception:  # an exception would end the observer thread: log it and keep watching
            log.exception("error handling %s", event)


def _paths(event: FileSystemEvent) -> list[tuple[Path, bool]]:
    """(path, gone) pairs: a move is the source leaving and the destination arriving."""
    if event.event_type == "moved":
        out = [(Path(str(event.src_path)), True)] if event.src_path else []
        return out + ([(Path(str(event.dest_path)), False)] if event.dest_path else [])
    return [(Path(str(event.src_path)), event.event_type == "deleted")]


class Watcher:
    def __init__(self, ws: Workspace, reg: Registry, *, report: Reporter | None = None,
                 on_job: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.ws = ws
        self.reg = reg
        self.report = report or Reporter()
        self.on_job = on_job
        self.settings = ws.config.watch
        self.settler = Settler(self.settings)
        self.observer = Observer()
        # ("curated", slug) | ("inbox", drop name) → (watch, inode of the folder). One non-recursive
        # watch per folder: only files directly inside count, and moving a drop away is clean.
        # Scheduling happens only on the settling thread (and in start): watchdog holds its own lock
        # while it dispatches events, so doing it from an event callback could deadlock.
        self._watches: dict[Hashable, tuple[ObservedWatch, int]] = {}
        self._watches_lock = threading.Lock()  # for readers on other threads; never held around watchdog
        self._drops_changed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lorastrap-settle", daemon=True)
        self._next_rescan = 0.0
        self._busy = False
        self.errors = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Watcher:
        ws = self.ws
        for folder in (ws.characters_dir, ws.inbox_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.observer.schedule(_Dispatch(lambda e: self.settler.note(RESCAN, None)), str(ws.characters_dir),
                               recursive=False, event_filter=DIR_EVENTS)
        self.observer.schedule(_Dispatch(self._on_inbox), str(ws.inbox_dir), recursive=False,
                               event_filter=FILE_EVENTS + DIR_EVENTS)
        self.observer.start()
        self.rescan()
        for folder in pending_drops(ws):
            self._watch(("inbox", folder.name), folder)
            self.settler.add(("inbox", folder.name), folder)  # dropped while not watching
        report_loose_files(ws, self.report)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        with self.settler.cond:
            self.settler.cond.notify_all()
        self.observer.stop()
        self.observer.join(timeout)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def idle(self) -> bool:
        """Nothing waiting to settle and no action running (for tests and benchmarks)."""
        return not self._busy and not self.settler.pending()

    @property
    def watched(self) -> list[str]:
        """Slugs of the characters whose curated/ is watched."""
        with self._watches_lock:
            return sorted(name for kind, name in self._watches if kind == "curated")  # type: ignore[misc]

    # -- events (observer thread) ------------------------------------------------------------------
    def _on_folder(self, key: Hashable, folder: Path, event: FileSystemEvent) -> None:
        """A file event in a watched curated/ or drop folder."""
        for path, gone in _paths(event):
            if path == folder:  # the folder itself was deleted: re-attach (or drop) the watch
                self.settler.note(RESCAN, None)
                continue
            if path.parent != folder or is_partial_name(path.name):
                continue
            if not is_relevant_name(path):
                if key[0] == "curated":  # type: ignore[index]
                    self.report.once(("ignored", key, path.name),
                                     f"{key[1]}: ignoring curated/{path.name}: not an image")  # type: ignore[index]
                continue
            self.settler.note(key, folder, path.name, write=event.event_type == "modified",
                              closed=gone or event.event_type == "closed")

    def _on_inbox(self, event: FileSystemEvent) -> None:
        """inbox/ itself: drop folders appearing or leaving, loose files."""
        inbox = self.ws.inbox_dir
        for path, gone in _paths(event):
            if path.parent != inbox or is_partial_name(path.name):
                continue
            if not event.is_directory:
                if not gone:
                    self.report.once(("loose", path.name), f"inbox/{path.name}: ignored; put each character's "
                                     "images and tags.txt in a folder inbox/<name>/")
                continue
            with self.settler.cond:  # the settling thread attaches/detaches the drop's watch
                self._drops_changed = True
                self.settler.cond.notify_all()

    def _sync_drops(self) -> None:
        """Watch every drop folder in inbox/; a new one is checked after the debounce."""
        present = {p.name: p for p in pending_drops(self.ws)}
        with self._watches_lock:
            watched = {name for kind, name in self._watches if kind == "inbox"}  # type: ignore[misc]
        for name in watched - set(present):
            self._unwatch(("inbox", name))
        for name in sorted(set(present) - watched):
            self._watch(("inbox", name), present[name])
            self.settler.note(("inbox", name), present[name])

    # -- characters ----------------------------------------------------------------------------------
    def rescan(self) -> None:
        """Watch every registered character's curated/ (and stop watching removed ones)."""
        ws = self.ws
        slugs = set(character_slugs(self.reg))
        with self._watches_lock:
            current = list(self._watches.items())
        for key, (_, inode) in current:
            kind, name = key  # type: ignore[misc]
            folder = ws.curated_dir(name) if kind == "curated" else ws.inbox_dir / name
            gone = kind == "curated" and name not in slugs
            if gone or not folder.is_dir() or folder.stat().st_ino != inode:
                self._unwatch(key)
        for slug in sorted(slugs - set(self.watched)):
            folder = ws.curated_dir(slug)
            if not ws.character_dir(slug).is_dir():
                self.report.once(("no-folder", slug), f"{slug}: no folder {ws.character_dir(slug)}; not watched")
                continue
            folder.mkdir(exist_ok=True)
            self._watch(("curated", slug), folder)
            self.settler.add(("curated", slug), folder)  # catches changes made while not watching
            if self._thread.is_alive():
                self.report.say(f"watching {ws.rel(folder)}")
        # A folder without a registry row yet is a character being added right now: look again soon.
        now = time.time()
        young = [d for d in ws.characters_dir.iterdir() if d.is_dir() and d.name not in slugs
                 and not is_partial_name(d.name) and now - d.stat().st_mtime < self.settings.write_timeout_s]
        if young:
            self.settler.note(RESCAN, None)
        self._next_rescan = time.monotonic() + self.settings.rescan_s

    def _watch(self, key: Hashable, folder: Path) -> None:
        if key in self._watches:
            return
        try:
            handler = _Dispatch(functools.partial(self._on_folder, key, folder))
            watch = self.observer.schedule(handler, str(folder), recursive=False,
                                           event_filter=FILE_EVENTS + [DirDeletedEvent])
            inode = folder.stat().st_ino
        except OSError as exc:  # gone already: nothing to watch
            log.debug("cannot watch %s: %s", folder, exc)
            return
        with self._watches_lock:
            self._watches[key] = (watch, inode)

    def _unwatch(self, key: Hashable) -> None:
        with self._watches_lock:
            entry = self._watches.pop(key, None)
        if entry is not None:
            try:
                self.observer.unschedule(entry[0])
            except KeyError:  # its emitter already stopped (folder deleted)
                pass
        self.settler.forget(key)

    # -- settling (own thread) -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.settler.cond:
                wait = self.settler.next_wait()
                until_rescan = max(0.0, self._next_rescan - time.monotonic())
                timeout = until_rescan if wait is None else min(wait, until_rescan)
                if timeout > 0 and not self._stop.is_set() and not self._drops_changed:
                    self.settler.cond.wait(timeout)
                drops_changed, self._drops_changed = self._drops_changed, False
            if self._stop.is_set():
                break
            self._busy = True
            try:
                if drops_changed:
                    self._sync_drops()
                for key in self.settler.poll():
                    self._act(key)
                if time.monotonic() >= self._next_rescan:
                    self._act(RESCAN)
            finally:
                self._busy = False

    def _act(self, key: Hashable) -> None:
        kind, name = key  # type: ignore[misc]
        try:
            job = None
            if kind == "rescan":
                self.rescan()
            elif kind == "curated":
                with self.ws.unit(self.reg) as ws:  # one settled change: one unit of work
                    job = on_curated_settled(ws, self.reg, name, self.report,
                                             changed_since=lambda: self.settler.pending(key))
            elif kind == "inbox":
                folder = self.ws.inbox_dir / name
                self._unwatch(key)  # the import moves the folder away
                try:
                    with self.ws.unit(self.reg) as ws:
                        job = on_drop_settled(ws, self.reg, folder, self.report)
                finally:
                    if folder.is_dir():  # still here (an error): keep watching it
                        self._watch(key, folder)
                self.rescan()
            if job is not None and self.on_job is not None:
                self.on_job(job)
        except Exception as exc:  # keep watching; the next change (or restart) retries
            self.errors += 1
            log.exception("watch: %s %s failed", kind, name)
            self.report.say(f"{kind} {name}: failed: {exc.__class__.__name__}: {exc}; will retry on the next change")


def watch(ws: Workspace, *, once: bool = False, run_jobs: bool = True, emit: Callable[[str], None] | None = None,
          show_progress: bool = True, worker_name: str | None = None) -> dict[str, Any]:
    """Watch and train until SIGINT/SIGTERM; with `once`, catch up on changes, run the queue, exit.
    Without `run_jobs` only jobs are queued (for `lorastrap worker` on GPU machines)."""
    report = Reporter(emit)
    with ws.unit() as ws, ws.registry() as reg:  # one registry for the watcher, worker and jobs
        worker = Worker(ws, reg, name=worker_name, emit=emit, show_progress=show_progress)
        with worker.signals():
            worker.requeue_stale()
            if once:
                queued = catch_up(ws, reg, report, stop=worker.stop_event)
                summary = worker.run(drain=True) if run_jobs else {}
                return {"queued": len(queued), **summary}
            watcher = Watcher(ws, reg, report=report, on_job=lambda _job: worker.wake()).start()
            s = ws.config.watch
            report.say(f"watching {len(watcher.watched)} character(s) and {ws.rel(ws.inbox_dir)}/ "
                       f"(debounce {s.debounce_s:g} s); Ctrl-C stops")
            try:
                if run_jobs:
                    summary = worker.run()
                else:  # only watch: a signal sets the stop event
                    while not worker.stop_event.wait(3600):
                        pass
                    summary = {}
            finally:
                watcher.stop()
            report.say("stopped watching")
            return summary
