"""`lorastrap db check`: is the registry sound, and do its rows and the workspace's files agree?

Three parts, each usable when the one before fails:
1. integrity — SQLite's own `PRAGMA integrity_check`, on a read-only connection that runs no
   migration (a damaged or newer registry is examined, never changed);
2. schema — the revision against this lorastrap's head and the revisions it knows;
3. orphans — rows pointing at files that are gone (images' blobs, LoRA files, exports, clash
   reports), and files no row points at (blobs, LoRA files, character folders), plus leftovers of
   interrupted writes (`.NAME.*.tmp`, `.NAME.*.stage`, `.NAME.old-*`).

Problems (1, 2, rows without files) make the command exit 1; the rest are notes.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from lorastrap.workspace import Workspace, check_registry_file
from registry.migrate import head_revision, known_revisions
from registry.models import Character, ClashRun, Export, Image, Lora

LEFTOVER = re.compile(r"^\..+\.(tmp|stage)$|^\..+\.old-\d+$")


@dataclass
class CheckReport:
    location: str
    integrity: list[str] = field(default_factory=list)  # "ok", or SQLite's messages
    revision: str | None = None
    head: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def sqlite_integrity(path: Path) -> list[str]:
    """SQLite's integrity_check on a read-only connection: ["ok"] when sound."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:  # not even the header reads
        return [str(exc)]
    finally:
        conn.close()


def check_registry(ws: Workspace) -> CheckReport:
    report = CheckReport(location=ws.registry_location, head=head_revision())
    path = ws.registry_path
    if path is not None:
        check_registry_file(path, ws.root)
        report.integrity = sqlite_integrity(path)
        if report.integrity != ["ok"]:
            report.problems += [f"integrity: {line}" for line in report.integrity]
            return report  # queries on a damaged file can fail anywhere: stop here
    else:
        report.integrity = ["not checked: a database server checks its own pages (PostgreSQL: pg_amcheck)"]
    with ws.open_registry(migrate=False) as reg:
        report.revision = reg.current_revision()
        if report.revision is not None and report.revision not in known_revisions():
            report.problems.append(f"schema: revision {report.revision} is newer than this lorastrap "
                                   f"({report.head}); upgrade lorastrap")
            return report
        if report.revision != report.head:
            report.problems.append(f"schema: revision {report.revision or '(empty)'}, head {report.head}; "
                                   "run `lorastrap db upgrade` (files were not compared)")
            return report
        with reg.session(write=False) as s:
            _compare_files(ws, s, report)
    return report


def _compare_files(ws: Workspace, s, report: CheckReport) -> None:  # type: ignore[no-untyped-def]
    blob_paths = set()
    for image_id, blob in s.execute(select(Image.id, Image.blob_path)):
        blob_paths.add(blob)
        if not ws.blobs.path(blob).is_file():
            report.problems.append(f"image #{image_id}: blob {blob} is missing")
    lora_files = set()
    for lora_id, name, stored in s.execute(select(Lora.id, Lora.name, Lora.file_path)):
        path = ws.abs(stored)
        lora_files.add(path.resolve())
        if not path.is_file():
            report.problems.append(f"LoRA #{lora_id} {name}: file {stored} is missing")
    for export_id, out_dir, files in s.execute(select(Export.id, Export.out_dir, Export.files)):
        gone = [f for f in files or [] if not ws.abs(f).exists()]
        if not ws.abs(out_dir).is_dir():
            report.problems.append(f"export #{export_id}: folder {out_dir} is missing")
        elif gone:
            report.problems.append(f"export #{export_id}: {len(gone)} file(s) missing, e.g. {gone[0]}")
    for run_id, out_dir in s.execute(select(ClashRun.id, ClashRun.out_dir)):
        if not ws.abs(out_dir).is_dir():
            report.problems.append(f"clash run #{run_id}: report folder {out_dir} is missing")
    root = ws.blobs.root
    if root.is_dir():
        loose = [p for p in root.glob("*/*") if p.is_file() and not LEFTOVER.match(p.name)
                 and p.relative_to(root).as_posix() not in blob_paths]
        if loose:
            report.notes.append(f"{len(loose)} blob(s) no image row points at, e.g. {ws.rel(loose[0])}")
    slugs = set(s.scalars(select(Character.slug)))
    if ws.characters_dir.is_dir():
        for folder in sorted(p for p in ws.characters_dir.iterdir() if p.is_dir()):
            if folder.name not in slugs:
                report.notes.append(f"folder {ws.rel(folder)} has no character row "
                                    "(kept by `character rm`? delete it, or restore a registry backup)")
                continue
            for lora in sorted((folder / "loras").glob("*.safetensors")):
                if lora.resolve() not in lora_files:
                    report.notes.append(f"LoRA file {ws.rel(lora)} has no registry row")
    for dirpath, dirnames, filenames in os.walk(ws.root):
        for name in [*dirnames, *filenames]:
            if LEFTOVER.match(name):
                report.notes.append(f"leftover of an interrupted write: {ws.rel(Path(dirpath) / name)} "
                                    "(safe to delete when no lorastrap command runs)")
