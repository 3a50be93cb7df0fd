"""Content-addressed image store: `blobs/ab/abcdef….png`, written atomically, never edited."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.kernel.journal import FileJournal


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def relpath(self, sha: str, ext: str) -> str:
        return f"{sha[:2]}/{sha}{ext}"

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def put_bytes(self, data: bytes, ext: str, journal: FileJournal | None = None) -> tuple[str, str]:
        """Store `data`; returns (sha256, relpath). Existing content is not rewritten (dedup)."""
        sha = sha256_bytes(data)
        rel = self.relpath(sha, ext)
        target = self.path(rel)
        if not target.exists():
            if journal is not None:
                journal.will_create(target)
            atomic_write_bytes(target, data)
        return sha, rel

    def put_file(self, src: Path, journal: FileJournal | None = None) -> tuple[str, str]:
        return self.put_bytes(Path(src).read_bytes(), Path(src).suffix.lower() or ".bin", journal)
