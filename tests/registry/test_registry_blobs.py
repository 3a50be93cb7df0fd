"""The content-addressed blob store, the file journal, and the SQLite pragmas."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from lorastrap.kernel.journal import FileJournal
from registry.blobs import BlobStore, sha256_file
from registry.db import SQLITE_BUSY_TIMEOUT_MS, open_registry, sqlite_url


def test_put_is_addressed_by_content_and_deduplicated(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"\x89PNG fake but fine"
    sha, rel = store.put_bytes(data, ".png")
    assert sha == hashlib.sha256(data).hexdigest()
    assert rel == f"{sha[:2]}/{sha}.png" and store.path(rel).read_bytes() == data
    mtime = store.path(rel).stat().st_mtime_ns
    again = store.put_bytes(data, ".png")
    assert again == (sha, rel) and store.path(rel).stat().st_mtime_ns == mtime  # not rewritten
    other_sha, _ = store.put_bytes(data + b"!", ".png")
    assert other_sha != sha
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert files == sorted([rel, f"{other_sha[:2]}/{other_sha}.png"])  # no temp files left behind
    src = tmp_path / "in.PNG"
    src.write_bytes(data)
    assert store.put_file(src) == (sha, rel) and sha256_file(src) == sha


def test_journal_undoes_new_blobs_and_folders_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    kept_sha, kept_rel = store.put_bytes(b"already there", ".png")
    with pytest.raises(RuntimeError):
        with FileJournal() as journal:
            store.put_bytes(b"already there", ".png", journal)
            _, new_rel = store.put_bytes(b"new content", ".png", journal)
            journal.mkdir(tmp_path / "chars" / "kit" / "seed")
            assert store.path(new_rel).is_file()
            raise RuntimeError("boom")
    assert store.path(kept_rel).read_bytes() == b"already there"
    assert not store.path(new_rel).exists() and not store.path(new_rel).parent.exists()
    assert not (tmp_path / "chars").exists()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with open_registry(sqlite_url(tmp_path / "r.sqlite3")) as reg, reg.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
