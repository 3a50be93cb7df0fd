"""The one translation of failures into one-line messages, at the CLI boundary.

Library code raises what it raises (UserError for what it checked, OSError from the file system,
database errors from the registry, which the registry translates itself:
`registry.errors.explain_database_error`); `explain` turns each into a line that says what
happened and what to do. `lorastrap --debug …` prints the traceback as well. Anything not recognised here is a
bug: it is reported as an internal error (one line, exit 1) with a pointer to `--debug`.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from registry.errors import explain_database_error, first_line

INTERNAL_EXIT = 1
USER_EXIT = 2

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


def explain_os_error(exc: OSError) -> str:
    names = [n for n in (exc.filename, exc.filename2) if n]
    where = " → ".join(os.fsdecode(n) for n in names)
    advice = _OS_ADVICE.get(exc.errno or -1)
    if advice is None:
        advice = f"{exc.strerror or exc.__class__.__name__}; check the path and the device"
    return f"{where}: {advice}" if where else advice


def explain(exc: BaseException, registry_location: str | None = None) -> tuple[str, int] | None:
    """(one-line message, exit code) for a failure a user can act on; None for a bug."""
    where = registry_location or "(.lorastrap/registry.sqlite3)"
    message = explain_database_error(exc, where)
    if message is not None:
        return message, USER_EXIT
    if isinstance(exc, MemoryError):
        return ("out of memory; use smaller sizes, fewer images or a smaller batch "
                "(the command stopped before writing its results)", USER_EXIT)
    if isinstance(exc, OSError):
        return explain_os_error(exc), USER_EXIT
    return None


def internal_error(exc: BaseException) -> str:
    detail: Any = first_line(str(exc))
    return (f"internal error: {exc.__class__.__name__}{': ' + detail if detail else ''} — this is a "
            "lorastrap bug; run again with `lorastrap --debug …` for the traceback and report it")
