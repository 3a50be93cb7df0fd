"""Progress for people and for logs: a bar on a terminal, a line per 10 % in a log, or nothing.

Every long loop in lorastrap asks `progress_bar(...)` for its bar instead of building a tqdm bar
itself, so one rule holds everywhere:

- disabled (`enabled=False`, `--no-progress`/`--quiet`, `lorastrap --no-progress …`, or
  LORASTRAP_PROGRESS=off): nothing is printed;
- stderr is a terminal (or LORASTRAP_PROGRESS=bar): a tqdm bar;
- otherwise (a log file, a pipe, CI): one plain line each time another 10 % is done — a tqdm bar
  writing to a file leaves thousands of carriage-return updates in the log.

Pure stdlib (tqdm is imported only for a real bar), so the lab's bare-GPU pretraining can use it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

ENV_VAR = "LORASTRAP_PROGRESS"  # bar | lines | off (default: bar on a terminal, else lines)
LINE_STEP_PERCENT = 10
_UNKNOWN_TOTAL_EVERY_S = 30.0

_suppressed = 0


@contextlib.contextmanager
def suppressed(active: bool = True) -> Iterator[None]:
    """Within this block no progress is shown (what `--no-progress`/`--quiet` wrap a command in)."""
    global _suppressed
    _suppressed += int(active)
    try:
        yield
    finally:
        _suppressed -= int(active)


def mode(enabled: bool = True, stream: TextIO | None = None) -> str:
    """"off", "bar" or "lines" for a bar that would write to `stream` (default stderr)."""
    if not enabled or _suppressed:
        return "off"
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("off", "bar", "lines"):
        return forced
    stream = stream or sys.stderr
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # a closed or odd stream
        return "lines"


class LineProgress:
    """The part of tqdm's interface lorastrap uses, printing a plain line per 10 % done."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int = 0,
                 stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self._stream = stream
        self._postfix = ""
        self._last_bucket = self._bucket()
        self._last_time = time.monotonic()
        self._closed = False

    def _bucket(self) -> int:
        if not self.total:
            return 0
        return int(100 * min(self.n, self.total) / self.total) // LINE_STEP_PERCENT

    def _emit(self) -> None:
        stream = self._stream or sys.stderr
        if self.total:
            text = f"{self.desc}: {100 * min(self.n, self.total) // self.total}% ({self.n}/{self.total} {self.unit})"
        else:
            text = f"{self.desc}: {self.n} {self.unit}"
        print(text + (f" {self._postfix}" if self._postfix else ""), file=stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        bucket = self._bucket()
        now = time.monotonic()
        if (self.total and bucket > self._last_bucket) or \
                (not self.total and now - self._last_time >= _UNKNOWN_TOTAL_EVERY_S):
            self._last_bucket, self._last_time = bucket, now
            self._emit()

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self._postfix = text

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoProgress(LineProgress):
    def update(self, n: int = 1) -> None:
        self.n += n


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", *, enabled: bool = True,
                 initial: int = 0, leave: bool = True, stream: TextIO | None = None) -> Any:
    """A tqdm bar, a LineProgress or a NoProgress (see the module doc); use it like tqdm."""
    chosen = mode(enabled, stream)
    if chosen == "off":
        return NoProgress(total, desc, unit, initial, stream)
    if chosen == "lines":
        return LineProgress(total, desc, unit, initial, stream)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # a bare GPU box (the lab's pretraining needs no tqdm)
        return LineProgress(total, desc, unit, initial, stream)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True,
                file=stream or sys.stderr)
