"""The registry when something is wrong with it: missing, empty, damaged, from a newer lorastrap,
read-only, or the disk full. Each is a one-line message that says which and what to do; the
registry is never silently replaced by an empty one. Also `db check` and `db backup`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from lorastrap.characters import add_character

TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def populated(workspace, seed_image):  # type: ignore[no-untyped-def]
    add_character(workspace, "Kit", [seed_image], "1girl, fox ears")
    return workspace


def _registry(ws) -> Path:  # type: ignore[no-untyped-def]
    return ws.state_dir / "registry.sqlite3"


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.code == 2, (result.code, result.out, result.err)
    assert TRACEBACK not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


def test_a_missing_registry_is_never_recreated_silently(populated, cli_run, seed_image) -> None:  # type: ignore[no-untyped-def]
    db = _registry(populated)
    db.unlink()
    for argv in (["character", "list"], ["character", "add", "Other", "--image", str(seed_image), "--tags", "a"],
                 ["status"], ["db", "current"]):
        line = _one_line_error(cli_run(*argv))
        assert "is missing" in line and "restore it from a backup" in line and "lorastrap init" in line
        assert not db.exists()
    r = cli_run("init", str(populated.root))  # the explicit way to start over
    assert r.code == 0 and "the registry was missing" in r.out and db.exists()

    db.write_bytes(b"")  # a truncated copy
    assert "is empty (0 bytes" in _one_line_error(cli_run("character", "list"))
    assert db.stat().st_size == 0


def test_an_unreadable_registry_is_a_one_line_error_naming_the_file(populated, cli_run) -> None:  # type: ignore[no-untyped-def]
    db = _registry(populated)
    before = db.read_bytes()
    db.chmod(0)
    try:
        try:
            db.open("rb").close()
        except PermissionError:
            pass
        else:  # root (CAP_DAC_OVERRIDE) reads any file: there is no unreadable registry to test
            pytest.skip("this user reads files whatever their permissions (root); run as another user")
        for argv in (["status"], ["db", "check"], ["character", "list"]):
            line = _one_line_error(cli_run(*argv))
            assert f"the registry {db} is not readable" in line and "chmod u+rw" in line, line
        assert db.stat().st_mode & 0o777 == 0  # nothing tried to "fix" it
    finally:
        db.chmod(0o644)
    assert db.read_bytes() == before


def test_a_registry_from_a_newer_lorastrap_is_refused(populated, cli_run) -> None:  # type: ignore[no-untyped-def]
    db = _registry(populated)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    before = db.read_bytes()
    for argv in (["character", "list"], ["db", "upgrade"], ["tags", "show", "kit"]):
        line = _one_line_error(cli_run(*argv))
        assert "9999_future" in line and "newer lorastrap" in line and "upgrade lorastrap" in line
    assert db.read_bytes() == before  # no migration was attempted
    r = cli_run("db", "current")
    assert r.code == 0 and "newer than this lorastrap" in r.out
    r = cli_run("db", "check")
    assert r.code == 1 and "is newer than this lorastrap" in r.out


def _corrupt_a_page(db: Path) -> None:
    """Overwrite one b-tree page of the characters table (what a bad sector or a torn copy does)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'characters'").fetchone()[0]
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    data[start:start + page_size] = b"\x5a" * page_size
    db.write_bytes(bytes(data))


def test_a_damaged_registry_page_is_a_one_line_error_and_db_check_finds_it(populated, cli_run) -> None:  # type: ignore[no-untyped-def]
    _corrupt_a_page(_registry(populated))
    for argv in (["character", "show", "kit"], ["character", "list"]):
        line = _one_line_error(cli_run(*argv))
        assert "is damaged" in line and "restore a backup" in line and "db check" in line
    r = cli_run("db", "check")
    assert r.code == 1 and "problem: integrity:" in r.out
    r = cli_run("--debug", "character", "list")  # --debug adds the traceback
    assert TRACEBACK in r.err and "is damaged" in r.err


@pytest.fixture
def tmpfs(tmp_path):  # type: ignore[no-untyped-def]
    """A real small tmpfs (ENOSPC, remount read-only: EROFS), where this machine lets us mount one."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True,
                       capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the injected-OSError tests cover the messages")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20)


def _copy_workspace(ws, dest: Path):  # type: ignore[no-untyped-def]
    import shutil

    from lorastrap.workspace import load_workspace

    shutil.copytree(ws.root, dest, ignore=shutil.ignore_patterns("blobs"))
    (dest / ".lorastrap" / "blobs").mkdir(exist_ok=True)
    return load_workspace(dest)


def test_read_only_registry(populated, cli_run, tmpfs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ws = _copy_workspace(populated, tmpfs / "ws")
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True, timeout=20)
    monkeypatch.chdir(ws.root)
    r = cli_run("character", "list")  # reading still works
    assert r.code == 0 and "kit" in r.out, r.err
    line = _one_line_error(cli_run("tags", "add", "kit", "green eyes"))
    assert "read-only" in line


def test_disk_full_while_writing(populated, cli_run, tmpfs, monkeypatch, snapshot, seed_image) -> None:  # type: ignore[no-untyped-def]
    ws = _copy_workspace(populated, tmpfs / "ws")
    monkeypatch.chdir(ws.root)
    before = snapshot(ws.root)
    filler = tmpfs / "filler"
    with open(filler, "wb") as fh:  # fill the 2 MB file system up
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
    out = tmpfs / "backup.sqlite3"
    line = _one_line_error(cli_run("db", "backup", str(out)))
    assert "no space left" in line
    assert not out.exists() and not list(tmpfs.glob(".backup.sqlite3.*.tmp"))  # nothing half-written
    line = _one_line_error(cli_run("character", "add", "Mika", "--image", str(seed_image), "--tags", "1girl"))
    assert "no space left" in line, line
    after = snapshot(ws.root)
    # SQLite could not delete its (empty) WAL and index on the full disk; they hold no change
    assert (ws.state_dir / "registry.sqlite3-wal").stat().st_size == 0
    after = {k: v for k, v in after.items() if not k.endswith(("-wal", "-shm"))}
    assert after == before  # the registry and every file as they were


def test_injected_os_errors_become_one_line_messages(populated, cli_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Where no tmpfs can be mounted: the same translation, from an injected OSError."""
    import lorastrap.kernel.atomic

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "characters/kit/seed/x.png")

    monkeypatch.setattr(lorastrap.kernel.atomic.tempfile, "mkstemp", full)
    line = _one_line_error(cli_run("db", "backup", str(populated.root / "b.sqlite3")))
    assert line == "error: characters/kit/seed/x.png: no space left on the device; free some space (or write elsewhere) and run it again"
    for code, words in ((errno.EACCES, "permission denied"), (errno.EROFS, "read-only"), (errno.EIO, "input/output")):
        monkeypatch.setattr(lorastrap.kernel.atomic.tempfile, "mkstemp",
                            lambda *a, c=code, **k: (_ for _ in ()).throw(OSError(c, os.strerror(c), "f")))
        assert words in _one_line_error(cli_run("db", "backup", str(populated.root / "b.sqlite3")))


def test_an_unexpected_exception_is_an_internal_error_line(populated, cli_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import lorastrap.characters

    monkeypatch.setattr(lorastrap.characters, "list_characters", lambda ws: 1 / 0)
    r = cli_run("character", "list")
    assert r.code == 1 and TRACEBACK not in r.err
    assert r.err.startswith("internal error: ZeroDivisionError") and "--debug" in r.err


def test_db_check_reports_rows_without_files_and_files_without_rows(populated, cli_run) -> None:  # type: ignore[no-untyped-def]
    r = cli_run("db", "check")
    assert r.code == 0 and r.out.strip().endswith("ok"), r.out
    blob = next(populated.blobs.root.glob("*/*.png"))
    blob.unlink()
    (populated.characters_dir / "ghost").mkdir()
    (populated.characters_dir / ".sprites.99999999.abc.stage").mkdir()
    r = cli_run("db", "check", "--json")
    assert r.code == 1
    import json

    report = json.loads(r.out)
    assert report["integrity"] == ["ok"] and report["revision"] == report["head"]
    assert any(f"blob {blob.parent.name}/{blob.name} is missing" in p for p in report["problems"])
    assert any("characters/ghost has no character row" in n for n in report["notes"])
    assert any("leftover of an interrupted write" in n for n in report["notes"])


def test_db_backup_is_a_consistent_copy_while_another_process_writes(populated, cli_run, tmp_path, lorastrap_argv) -> None:  # type: ignore[no-untyped-def]
    stop = threading.Event()
    writes = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            p = subprocess.run(lorastrap_argv(populated.root, "tags", "add", "kit", f"tag {i}"),
                               capture_output=True, text=True, timeout=60)
            writes.append(p.returncode)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for n in range(3):
            dest = tmp_path / f"backup-{n}.sqlite3"
            r = cli_run("db", "backup", str(dest))
            assert r.code == 0 and "integrity: ok" in r.out, r.err
            with contextlib.closing(sqlite3.connect(dest)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
                assert conn.execute("SELECT slug FROM characters").fetchall() == [("kit",)]
    finally:
        stop.set()
        thread.join()
    assert writes and set(writes) == {0}
    r = cli_run("db", "backup", str(tmp_path / "backup-0.sqlite3"))
    assert "exists; choose another file or pass --overwrite" in _one_line_error(r)
    r = cli_run("db", "backup", str(tmp_path))  # a folder: a time-stamped file inside it
    assert r.code == 0 and list(tmp_path.glob("registry-*.sqlite3"))


def test_db_backup_of_a_postgresql_registry_points_to_pg_dump(populated, cli_run) -> None:  # type: ignore[no-untyped-def]
    cfg = populated.root / "lorastrap.toml"
    cfg.write_text(cfg.read_text().replace('database_url = ""', 'database_url = "postgresql://u:secret@db/lorastrap"'))
    line = _one_line_error(cli_run("db", "backup", "x.sql"))
    assert "pg_dump" in line and "secret" not in line
