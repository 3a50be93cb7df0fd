"""Registry schema status, upgrades and backups for `lorastrap db`."""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from lorastrap.kernel.atomic import atomic_path
from lorastrap.kernel.errors import UserError
from lorastrap.workspace import Workspace, check_registry_file
from registry.migrate import head_revision, known_revisions, upgrade


def registry_status(ws: Workspace, migrate: bool = False) -> dict[str, Any]:
    with ws.open_registry(migrate=migrate) as reg:
        current = reg.current_revision()
        return {"url": ws.registry_location, "current": current, "head": head_revision(),
                "known": current is None or current in known_revisions()}


def upgrade_registry(ws: Workspace, revision: str = "head") -> tuple[str | None, str | None]:
    with ws.open_registry(migrate=False) as reg:
        before = reg.current_revision()
        upgrade(reg.engine, revision)
        return before, reg.current_revision()


def backup_registry(ws: Workspace, dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Copy the SQLite registry to `dest` with SQLite's online backup API: a consistent snapshot
    even while other lorastrap processes write (WAL content included), written to a temporary
    file beside `dest` and renamed into place. A folder as `dest` gets a time-stamped file."""
    path = ws.registry_path
    if path is None:
        raise UserError(f"the registry is a database server ({ws.registry_location}); back it up with "
                        "its own tool, e.g. `pg_dump DATABASE_URL > lorastrap-registry.sql` for PostgreSQL")
    check_registry_file(path, ws.root)
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / f"registry-{dt.datetime.now():%Y%m%d-%H%M%S}.sqlite3"
    if dest.exists() and not overwrite:
        raise UserError(f"{dest} exists; choose another file or pass --overwrite")
    if dest.resolve() == path.resolve():
        raise UserError(f"{dest} is the registry itself; choose another file")
    needed = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < needed:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))  # check before writing
    try:
        with atomic_path(dest) as tmp:
            source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            copy = sqlite3.connect(tmp)
            try:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                integrity = [row[0] for row in copy.execute("PRAGMA integrity_check(5)")]
            finally:
                copy.close()
                source.close()
    except sqlite3.Error as exc:
        raise UserError(f"cannot write the backup {dest} ({exc}); check the space and permissions there "
                        "(nothing was left behind)") from None
    return {"path": dest, "bytes": dest.stat().st_size, "integrity": integrity}
