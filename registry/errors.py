"""The registry's one user-facing error type, and what the database's own errors mean for a user.

The registry package must not import lorastrap (dependencies point one way), so, like
game_export's ExportError, this subclasses nothing project-specific; the CLI prints it as one
line and exits 2. Errors raised by the database (SQLite, PostgreSQL, through SQLAlchemy) are
translated here, where SQLAlchemy is known (`explain_database_error`); the CLI only prints them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

_FULL_BELOW = 1 << 20  # bytes free under which a write error is taken for a full disk


class RegistryError(Exception):
    """The registry cannot be used as it is: missing, damaged, from a newer lorastrap ...
    The message says which, and what to do."""

    exit_code = 2


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


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


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
            return f"{advice.format(where=where)} ({first_line(text)})"
    return f"the registry {where} refused the operation ({first_line(text)}); nothing was changed"


def explain_database_error(exc: BaseException, where: str) -> str | None:
    """One line for an error the database raised (SQLAlchemy or sqlite3); None for anything else."""
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, (sa_exc.DBAPIError, sa_exc.OperationalError, sqlite3.Error)):
        return explain_db_error(exc, where)
    return None
