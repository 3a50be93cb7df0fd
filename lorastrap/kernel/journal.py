"""Undo log for files: what a failed command created is removed again, so nothing is half-done."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType


class FileJournal:
    """Record files/dirs before creating them; on an exception inside `with`, remove them.

    Use it outside the registry transaction (`with FileJournal() as j, reg.session() as s:`), so a
    failed commit also undoes the files.
    """

    def __init__(self) -> None:
        self._created: list[Path] = []

    def will_create(self, path: Path) -> Path:
        """Note `path` (and any missing parent dirs) as new; returns it for chaining."""
        path = Path(path)
        missing: list[Path] = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        self._created.extend(reversed(missing))
        return path

    def mkdir(self, path: Path) -> Path:
        self.will_create(path)
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path)

    def rollback(self) -> None:
        for path in reversed(self._created):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._created.clear()

    def __enter__(self) -> FileJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.rollback()
