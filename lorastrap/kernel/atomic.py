"""Atomic file writes: write to a temporary sibling, then rename.

A crash or an error leaves either the old file or the new one, never half of one; folders are
swapped in whole the same way. Shared by the blob store, the LoRA saver, the dataset exporter and
the game exporters (pure stdlib on purpose).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_dir(final_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory's contents in a temporary sibling, then move each entry into place.

    The final directory may already exist (e.g. a Godot project folder): only the entries written
    into the stage replace their namesakes. On error the stage is deleted and nothing is touched.
    """
    final = Path(final_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".stage", dir=final.parent))
    try:
        yield stage
        final.mkdir(parents=True, exist_ok=True)
        for entry in sorted(stage.iterdir()):
            target = final / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# -- whole-folder swaps -------------------------------------------------------------------------
#
# A folder is built complete in a stage beside it (`.NAME.PID.XXXX.stage`), then exchanged with
# the old folder in ONE atomic rename (Linux renameat2 RENAME_EXCHANGE): a reader — or a crash —
# sees the old folder or the new one, never a mix. Where the exchange is not supported, two
# renames (old → `.NAME.old-PID`, stage → NAME) leave a window in which NAME is missing; the next
# swap of NAME (or `recover_dir`) puts the old folder back if a crash hit that window. Stages and
# old folders of dead processes are removed by the next swap.

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_STALE_UNNAMED_S = 3600.0  # leftovers whose name carries no pid: stale after an hour
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


def _rename(src: Path, dst: Path) -> None:
    """One rename of a swap (a seam for the crash tests, which kill the process here)."""
    os.replace(src, dst)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the system cannot (then nothing changed)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(final: Path) -> list[tuple[Path, str, bool]]:
    """(path, "stage" | "old", stale) for the swap leftovers beside `final`."""
    found = []
    if not final.parent.is_dir():
        return found
    stage = re.compile(rf"^\.{re.escape(final.name)}\.(?:(\d+)\.)?[^.]+\.stage$")
    old = re.compile(rf"^\.{re.escape(final.name)}\.old-(\d+)$")
    for entry in final.parent.iterdir():
        match, kind = stage.match(entry.name), "stage"
        if match is None:
            match, kind = old.match(entry.name), "old"
        if match is None:
            continue
        if match.group(1):
            stale = not _alive(int(match.group(1)))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > _STALE_UNNAMED_S
            except OSError:
                continue
        found.append((entry, kind, stale))
    return found


def recover_dir(final_dir: str | os.PathLike[str]) -> list[Path]:
    """Finish what a killed swap of `final_dir` left: put the old folder back when the crash came
    between the two renames, and delete stale stages and old folders. Returns what was removed."""
    final = Path(final_dir)
    leftovers = [(p, kind) for p, kind, stale in _leftovers(final) if stale]
    olds = sorted((p for p, kind in leftovers if kind == "old"), key=lambda p: p.stat().st_mtime)
    if olds and not final.exists():
        _rename(olds.pop(), final)
    removed = []
    for path in [*olds, *(p for p, kind in leftovers if kind == "stage")]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _carry(old: Path, stage: Path, keep: Callable[[str], bool]) -> None:
    """Hard-link (else copy) into `stage` every file of `old` that `keep` wants and the stage
    does not have: files the folder holds besides ours (a Godot project's .import files ...)."""
    for dirpath, dirnames, filenames in os.walk(old):
        here = Path(dirpath)
        rel_dir = here.relative_to(old)
        for name in [*filenames, *(d for d in dirnames if (here / d).is_symlink())]:
            src = here / name
            rel = (rel_dir / name).as_posix()
            dst = stage / rel
            if not keep(rel) or dst.exists() or dst.is_symlink():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        for name in dirnames:
            rel = (rel_dir / name).as_posix()
            if keep(rel) and not (here / name).is_symlink() and not any((here / name).iterdir()):
                (stage / rel).mkdir(parents=True, exist_ok=True)


def _swap_in(stage: Path, final: Path) -> None:
    """Put `stage` at `final`; the old folder, if any, ends at `stage` (deleted by the caller)."""
    if not final.exists():
        _rename(stage, final)
        return
    if _exchange(stage, final):
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    _rename(final, old)
    _rename(stage, final)
    _rename(old, stage)


@contextlib.contextmanager
def replaced_dir(final_dir: str | os.PathLike[str], keep: Callable[[str], bool] | None = None,
                 marker: str | None = None) -> Iterator[Path]:
    """Build a folder in a stage beside `final_dir`, then swap it in for `final_dir` as a whole.

    `keep(relative_path)` names the files of the old folder that are carried into the new one
    (hard links: no copy of the data) — those that are not this writer's, when the folder is
    shared with other tools. Without it the new folder replaces the old one entirely. On an
    error (or a kill) before the swap, the old folder is untouched.

    Refused (OSError, nothing touched): a file system root or mount point, the current folder or
    one holding it, and — with `marker` — an existing non-empty folder without that file (a
    folder this writer did not make: `--out ~/Documents` must not wipe Documents).
    """
    final = Path(final_dir).resolve()
    if final.parent == final or os.path.ismount(final):
        raise OSError(errno.EBUSY, "a file system root or mount point cannot be replaced", str(final))
    if Path.cwd().resolve().is_relative_to(final):
        raise OSError(errno.EBUSY, "the current folder (or one holding it) cannot be replaced", str(final))
    if marker and final.is_dir() and any(final.iterdir()) and not (final / marker).exists():
        raise OSError(errno.ENOTEMPTY, f"holds other files and no {marker}, so it is not ours to replace; "
                      "choose a new or empty folder", str(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(final)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".stage", dir=final.parent))
    try:
        # mkdtemp makes 0700; the folder should look like any other the user makes (or as before)
        os.chmod(stage, stat.S_IMODE(final.stat().st_mode) if final.is_dir() else 0o777 & ~_umask())
        yield stage
        if keep is not None and final.is_dir():
            _carry(final, stage, keep)
        _swap_in(stage, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
