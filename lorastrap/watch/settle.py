"""When has a folder settled? Per-key debounce plus file stability, with no busy polling.

A key (one character's curated/, one inbox drop) is acted on only when
1. no event arrived for `debounce_s`;
2. no file is still open for writing: a content write (inotify IN_MODIFY) marks a file as being
   written until its close-after-write (IN_CLOSE_WRITE) arrives, so a slow copy that pauses longer
   than the debounce is still not read; a write mark expires after `write_timeout_s` without events
   (platforms without close events, tools that never close);
3. `stable_checks` snapshots of every file's (size, mtime), `stable_interval_s` apart, are equal
   (taken during the quiet period where it is long enough, so they add no latency).
Waiting is done by the caller on `cond` with the timeout `next_wait()` gives: nothing runs while
nothing is pending.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from lorastrap.config import WatchSettings
from lorastrap.images import is_image_name, is_partial_name

Snapshot = dict[str, tuple[int, int]]


def is_relevant_name(path: Path) -> bool:
    """An image or a caption sidecar; partial/temporary/hidden files never are."""
    return not is_partial_name(path.name) and (is_image_name(path) or path.suffix.lower() == ".txt")


def snapshot(folder: Path) -> Snapshot:
    """(size, mtime_ns) of the relevant files directly in `folder` (stat only: no file is opened)."""
    snap: Snapshot = {}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return snap
    for entry in entries:
        try:
            if entry.is_file() and is_relevant_name(Path(entry.name)):
                st = entry.stat()
                snap[entry.name] = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:  # deleted while we looked: the next event re-arms the key
            continue
    return snap


@dataclass
class _Pending:
    folder: Path | None
    last_event: float
    next_check: float
    writing: dict[str, float] = field(default_factory=dict)  # file name → time of its last write
    snap: Snapshot | None = None
    equal: int = 0
    mtime_quiet: bool = False  # added without an event: also require the newest file to be old


class Settler:
    def __init__(self, settings: WatchSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.s = settings
        self.clock = clock
        self.cond = threading.Condition()
        self._pending: dict[Hashable, _Pending] = {}

    # -- input (observer threads) ---------------------------------------------------------------------
    def note(self, key: Hashable, folder: Path | None, name: str | None = None, *, write: bool = False,
             closed: bool = False) -> None:
        """An event for `key`: restart its debounce. `write`: file `name` got content (it is being
        written); `closed`: it was closed after writing, deleted or moved away."""
        now = self.clock()
        with self.cond:
            p = self._pending.get(key)
            if p is None:
                p = self._pending[key] = _Pending(folder, now, now)
            p.last_event, p.snap, p.equal, p.mtime_quiet = now, None, 0, False
            p.next_check = now + self._first_snapshot_after()
            if name is not None:
                if write:
                    p.writing[name] = now
                elif closed:
                    p.writing.pop(name, None)
            self.cond.notify_all()

    def add(self, key: Hashable, folder: Path | None) -> None:
        """Check `key` now (start-up, newly watched): no debounce wait, but files modified within
        the debounce count as not quiet yet."""
        now = self.clock()
        with self.cond:
            if key not in self._pending:
                self._pending[key] = _Pending(folder, now - self.s.debounce_s, now, mtime_quiet=True)
            self.cond.notify_all()

    def forget(self, key: Hashable) -> None:
        with self.cond:
            self._pending.pop(key, None)

    # -- output (the settling thread) --------------------------------------------------------------------
    def pending(self, key: Hashable | None = None) -> bool:
        """Is anything (or `key`) waiting to settle?"""
        with self.cond:
            return bool(self._pending) if key is None else key in self._pending

    def next_wait(self) -> float | None:
        """Seconds until the earliest check is due; None when nothing is pending."""
        with self.cond:
            if not self._pending:
                return None
            return max(0.0, min(p.next_check for p in self._pending.values()) - self.clock())

    def poll(self) -> list[Hashable]:
        """Keys that have settled now (they are removed; a later event adds them again)."""
        now = self.clock()
        settled: list[Hashable] = []
        # Checked under the lock (a stat of one folder: sub-millisecond), so an event cannot slip
        # in between the check and the removal.
        with self.cond:
            for key, p in list(self._pending.items()):
                if p.next_check <= now and self._check(p, now):
                    settled.append(key)
                    del self._pending[key]
        return settled

    def _first_snapshot_after(self) -> float:
        # The stability snapshots are taken inside the quiet period, ending at the debounce: a
        # folder that stays quiet and stable settles exactly `debounce_s` after its last event.
        return max(0.0, self.s.debounce_s - self.s.stable_interval_s * (max(1, self.s.stable_checks) - 1))

    def _check(self, p: _Pending, now: float) -> bool:
        s = self.s
        quiet = now - p.last_event
        if quiet < self._first_snapshot_after():
            p.next_check = p.last_event + self._first_snapshot_after()
            return False
        live = {n: t for n, t in p.writing.items() if now - t < s.write_timeout_s}
        p.writing = live
        if live:  # the close event re-arms the key; until then only the timeout can
            p.next_check = min(live.values()) + s.write_timeout_s
            return False
        if p.folder is not None and not self._stable(p, now):
            return False
        if quiet < s.debounce_s:
            p.next_check = p.last_event + s.debounce_s
            return False
        return True

    def _stable(self, p: _Pending, now: float) -> bool:
        """Take a snapshot; True once `stable_checks` equal ones were seen in a row."""
        s = self.s
        snap = snapshot(p.folder)  # type: ignore[arg-type]
        wall = time.time()
        if p.mtime_quiet and snap:
            age = wall - max(m for _, m in snap.values()) / 1e9
            if age < s.debounce_s:
                p.snap, p.equal, p.next_check = None, 0, now + (s.debounce_s - age)
                return False
        # an empty image is a file whose copy has not started writing yet
        empty_young = any(size == 0 and is_image_name(Path(n)) and wall - m / 1e9 < s.write_timeout_s
                          for n, (size, m) in snap.items())
        if p.snap is not None and snap == p.snap and not empty_young:
            p.equal += 1
        else:
            p.snap, p.equal = snap, 1
        if p.equal >= max(1, s.stable_checks) and not empty_young:
            return True
        p.next_check = now + s.stable_interval_s
        return False
