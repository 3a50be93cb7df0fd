"""Find or create a workspace: a folder with `lorastrap.toml`, found by walking up like git; and
the unit of work — one registry for a command, a job, a watcher event or a web request.

Services take a `Workspace` and open their transactions with `ws.session()` (or `ws.registry()`
where they need the registry itself). Inside `with ws.unit() as ws:` those share ONE registry,
opened on first use (engine, pragmas, migration check) and closed when the unit ends; outside a
unit each call opens its own, as a one-off script would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from lorastrap.config import DEFAULT_BASE_MODEL, DEFAULT_TOML, Config
from lorastrap.kernel.atomic import atomic_write_text
from lorastrap.kernel.errors import UserError
from registry.blobs import BlobStore
from registry.db import Registry, open_registry, sqlite_url
from registry.errors import RegistryError

T = TypeVar("T")
CONFIG_NAME = "lorastrap.toml"
STATE_DIR = ".lorastrap"
ENV_VAR = "LORASTRAP_WORKSPACE"
# The overview `bootstrap` writes beside a round's candidates (candidates/rN/): never a candidate.
CONTACT_SHEET_NAME = "contact-sheet.png"


class _Unit:
    """The registry of one unit of work: opened on first use (thread-safe), closed at the end
    unless the caller handed in one it owns."""

    def __init__(self, ws: Workspace, registry: Registry | None) -> None:
        self._ws, self._registry, self._owned = ws, registry, registry is None
        self._lock = threading.Lock()

    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = self._ws.open_registry()
            return self._registry

    def close(self) -> None:
        with self._lock:
            if self._owned and self._registry is not None:
                self._registry.close()
            self._registry = None


@dataclass
class Workspace:
    root: Path
    config: Config
    _unit: _Unit | None = field(default=None, repr=False, compare=False)

    # -- the unit of work -----------------------------------------------------------------
    @contextlib.contextmanager
    def unit(self, registry: Registry | None = None) -> Iterator[Workspace]:
        """This workspace with one registry for everything done inside the block: `registry` (the
        caller's, left open), else one opened on first use and closed at the end. Inside a unit,
        a nested `unit()` is the same unit."""
        if self._unit is not None:
            yield self
            return
        unit = _Unit(self, registry)
        try:
            yield dataclasses.replace(self, _unit=unit)
        finally:
            unit.close()

    def bound(self, registry: Registry) -> Workspace:
        """This workspace with `registry` for all its sessions: for a process that holds one
        registry for its whole life (the web UI); the caller closes it."""
        return self if self._unit is not None else dataclasses.replace(self, _unit=_Unit(self, registry))

    @contextlib.contextmanager
    def registry(self) -> Iterator[Registry]:
        """The unit's registry (left open), or outside a unit one opened for this block."""
        if self._unit is not None:
            yield self._unit.registry()
        else:
            with self.open_registry() as reg:
                yield reg

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """One transaction on the registry (commit or rollback); `write=False` takes no write lock."""
        with self.registry() as reg, reg.session(write) as s:
            yield s

    # -- locations -------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.state_dir / "blobs")

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def characters_dir(self) -> Path:
        return self.root / "characters"

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    def character_dir(self, slug: str) -> Path:
        return self.characters_dir / slug

    def seed_dir(self, slug: str) -> Path:
        return self.character_dir(slug) / "seed"

    def curated_dir(self, slug: str) -> Path:
        return self.character_dir(slug) / "curated"

    def candidates_dir(self, slug: str, round_no: int | None = None) -> Path:
        base = self.character_dir(slug) / "candidates"
        return base if round_no is None else base / f"r{round_no}"

    def datasets_dir(self, slug: str) -> Path:
        return self.character_dir(slug) / "datasets"

    def loras_dir(self, slug: str) -> Path:
        return self.character_dir(slug) / "loras"

    def exports_dir(self, slug: str) -> Path:
        return self.character_dir(slug) / "exports"

    def check_output_folder(self, out: Path, option: str = "--out", marker: str | None = None) -> Path:
        """`out` resolved, if it may be replaced as a whole by an export; else a UserError.

        Never the workspace (or a folder holding it), its state, or a character's working
        folders — inside a character only under exports/ or datasets/. With `marker`, an existing
        non-empty folder must hold that file (a previous export of the same kind).
        """
        out = Path(out).expanduser().resolve()
        root = self.root.resolve()
        if out == root or root.is_relative_to(out):
            raise UserError(f"{option} {out} holds the workspace; export into a folder of its own")
        if out.is_relative_to(root):
            parts = out.relative_to(root).parts
            if parts[0] == self.state_dir.name or (parts[0] == self.characters_dir.name and (
                    len(parts) < 4 or parts[2] not in ("exports", "datasets"))):
                raise UserError(f"{option} {out} is one of the workspace's own folders; use a folder under "
                                "characters/<name>/exports/ or outside the workspace")
        if marker and out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
            raise UserError(f"{option} {out} already holds other files and no {marker}; it would be "
                            f"replaced as a whole: export into a folder of its own, e.g. {out / 'export'}")
        return out

    def rel(self, path: Path) -> str:
        """Path relative to the workspace root when inside it (how the registry stores paths)."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def abs(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    # -- registry --------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.config.workspace.database_url or sqlite_url(self.state_dir / "registry.sqlite3")

    @property
    def registry_path(self) -> Path | None:
        """The registry's SQLite file; None when the registry is a database server."""
        try:
            url = make_url(self.database_url)
        except ArgumentError:
            return None
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    @property
    def registry_location(self) -> str:
        """The registry for messages: its file, or its URL without the password."""
        path = self.registry_path
        if path is not None:
            return str(path)
        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.database_url

    def open_registry(self, *, create: bool = False, migrate: bool = True) -> Registry:
        """A new connection to the migrated registry (services use `session()`/`registry()`). A
        registry file that is missing or empty is an error, never silently replaced by an empty
        one: only `create` (what `lorastrap init` passes) makes one."""
        path = self.registry_path
        if create:
            self.state_dir.mkdir(exist_ok=True)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        elif path is not None:
            check_registry_file(path, self.root)
        url = self.database_url
        if path is not None and path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            # A registry on a read-only medium: SQLite cannot make the WAL index beside it, so it
            # opens only as immutable. Reading works; a write says "read-only" (CLI boundary).
            url = f"sqlite:///file:{path.resolve().as_posix()}?immutable=1&uri=true"
        try:
            return open_registry(url, migrate=migrate)
        except (UserError, RegistryError, DBAPIError):
            raise  # DBAPIError: the CLI boundary says what the database said (damaged, locked ...)
        except Exception as exc:  # a wrong URL or unreachable server is a user problem
            raise UserError(
                f"cannot open the registry at {self.registry_location!r}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}; check [workspace] database_url"
            ) from exc


def unit_of_work(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a service (first argument: the workspace) as one unit of work, unless it already runs
    inside one: all its transactions share one registry."""
    @functools.wraps(fn)
    def wrapper(ws: Workspace, *args: Any, **kwargs: Any) -> T:
        with ws.unit() as unit_ws:
            return fn(unit_ws, *args, **kwargs)
    return wrapper


def check_registry_file(path: Path, root: Path) -> None:
    """Refuse a registry file that is missing, empty or not a file, saying what to do."""
    restore = ("restore it from a backup (`lorastrap db backup DEST` makes backups), or run "
               f"`lorastrap init {root}` to start a new, empty registry")
    if not path.exists():
        raise RegistryError(f"the registry {path} is missing; {restore}")
    if not path.is_file():
        raise RegistryError(f"the registry {path} is not a file; move it away and {restore}")
    if path.stat().st_size == 0:
        raise RegistryError(f"the registry {path} is empty (0 bytes, a truncated copy?); {restore}")
    if not os.access(path, os.R_OK):
        raise RegistryError(f"the registry {path} is not readable; fix its permissions "
                            f"(chmod u+rw {path})")


def load_workspace(root: Path) -> Workspace:
    root = Path(root).resolve()
    return Workspace(root=root, config=Config.load(root / CONFIG_NAME))


def find_workspace(start: Path | None = None, override: str | os.PathLike[str] | None = None) -> Workspace:
    """The workspace given by `override`, $LORASTRAP_WORKSPACE, or the nearest parent with a config."""
    explicit = override or os.environ.get(ENV_VAR)
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise UserError(f"{root} is not a lorastrap workspace (no {CONFIG_NAME}); run `lorastrap init {root}`")
        return load_workspace(root)
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return load_workspace(candidate)
    raise UserError(f"not inside a lorastrap workspace ({here}); run `lorastrap init` to create one")


def init_workspace(directory: Path, base_model: str = DEFAULT_BASE_MODEL) -> tuple[Workspace, bool]:
    """Create (or re-open) a workspace; returns (workspace, created)."""
    root = Path(directory).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a folder; choose another path")
    config_path = root / CONFIG_NAME
    created = not config_path.exists()
    root.mkdir(parents=True, exist_ok=True)
    if created:
        # a JSON string is a valid TOML basic string: quotes and line breaks stay inside it
        atomic_write_text(config_path, DEFAULT_TOML.format(base_model=json.dumps(base_model, ensure_ascii=False)))
    ws = load_workspace(root)
    for d in (ws.state_dir, ws.characters_dir, ws.inbox_dir):
        d.mkdir(parents=True, exist_ok=True)
    ws.open_registry(create=True).close()
    return ws, created
