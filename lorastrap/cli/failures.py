"""The one translation of failures into one-line messages, at the CLI boundary.

Library code raises what it raises (UserError for what it checked, OSError from the file system,
SQLAlchemy errors from the registry); `explain` turns each into a line that says what happened and
what to do. `lorastrap --debug …` prints the traceback as well. Anything not recognised here is a
bug: it is reported as an internal error (one line, exit 1) with a pointer to `--debug`.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

INTERNAL_EXIT = 1
USER_EXIT = 2
_FULL_BELOW = 1 << 20  # bytes free under which a write error is taken for a full disk

_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device; free some space (or write elsewhere) and run it again",
    errno.EDQUOT: "disk quota exceeded; free some space (or write elsewhere) and run it again",
    errno.EROFS: "the file system is read-only; work on a writable copy or choose another folder",
    errno.EACCES: "permission denied; check the permissions (or choose another folder)",
    errno.EPERM: "operation not permitted; check the permissions (or choose another folder)",
    errno.ENOENT: "no such file or folder; check the path",
    errno.EISDIR: "is a folder where a file was expected; give a file",
    errno.ENOTDIR: "is not a folder (a file is in the way); give a folder",
    errno.ENAMETOOLONG: "the file name is too long for this file system; use a shorter name",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or close other programs",
    errno.EIO: "input/output error (a failing disk or a dropped network share?); check the device",
    errno.EEXIST: "already exists; remove it or choose another name",
}

# SQLite / PostgreSQL error texts → what they mean for a lorastrap registry.
_DB_ADVICE = (
    (("readonly database", "read-only", "read only"),
     "the registry is read-only; make {where} writable (or work on a writable copy) and run it again"),
    (("database is locked", "database table is locked"),
     "the registry stayed locked by another lorastrap process for over 30 s; run it again when that one is done"),
    (("malformed", "file is not a database", "file is encrypted", "corrupt"),
     "the registry {where} is damaged; restore a backup of it (`lorastrap db backup DEST` makes backups) "
     "and run `lorastrap db check` to see what is affected"),
    (("disk is full", "database or disk is full"),
     "no space left for the registry {where}; free some space and run it again"),
    (("disk i/o error",),
     "input/output error on the registry {where} (a failing disk or a network share?); check the device"),
    (("unable to open database file",),
     "cannot open the registry {where}; check that its folder exists and is readable and writable"),
    (("no such table", "no such column", "undefinedtable", "undefinedcolumn"),
     "the registry {where} does not have the tables this lorastrap expects; run `lorastrap db current` "
     "and `lorastrap db upgrade`"),
    (("could not connect", "connection refused", "server closed the connection", "timeout expired"),
     "cannot reach the registry's database server; check that it runs and [workspace] database_url"),
)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def explain_os_error(exc: OSError) -> str:
    names = [n for n in (exc.filename, exc.filename2) if n]
    where = " → ".join(os.fsdecode(n) for n in names)
    advice = _OS_ADVICE.get(exc.errno or -1)
    if advice is None:
        advice = f"{exc.strerror or exc.__class__.__name__}; check the path and the device"
    return f"{where}: {advice}" if where else advice


def _nearly_full(where: str) -> bool:
    """SQLite reports a full disk as a "disk I/O error" when it cannot grow its WAL index."""
    try:
        return shutil.disk_usage(Path(where).parent).free < _FULL_BELOW
    except (OSError, ValueError):
        return False


def explain_db_error(exc: BaseException, where: str) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    low = text.lower()
    if "disk i/o error" in low and _nearly_full(where):
        low = "database or disk is full"
    for needles, advice in _DB_ADVICE:
        if any(n in low for n in needles):
            return f"{advice.format(where=where)} ({_first_line(text)})"
    return f"the registry {where} refused the operation ({_first_line(text)}); nothing was changed"


def explain(exc: BaseException, registry_location: str | None = None) -> tuple[str, int] | None:
    """(one-line message, exit code) for a failure a user can act on; None for a bug."""
    where = registry_location or "(.lorastrap/registry.sqlite3)"
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        sa_exc = None  # type: ignore[assignment]
    if sa_exc is not None and isinstance(exc, (sa_exc.DBAPIError, sa_exc.OperationalError)) \
            or isinstance(exc, sqlite3.Error):
        return explain_db_error(exc, where), USER_EXIT
    if isinstance(exc, MemoryError):
        return ("out of memory; use smaller sizes, fewer images or a smaller batch "
                "(the command stopped before writing its results)", USER_EXIT)
    if isinstance(exc, OSError):
        return explain_os_error(exc), USER_EXIT
    return None


def internal_error(exc: BaseException) -> str:
    detail: Any = _first_line(str(exc))
    return (f"internal error: {exc.__class__.__name__}{': ' + detail if detail else ''} — this is a "
            "lorastrap bug; run again with `lorastrap --debug …` for the traceback and report it")
