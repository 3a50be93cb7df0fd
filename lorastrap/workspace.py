"""Find or create a workspace: a folder with `lorastrap.toml`, found by walking up like git."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lorastrap.config import DEFAULT_BASE_MODEL, DEFAULT_TOML, Config
from lorastrap.errors import UserError
from registry.atomic import atomic_write_text
from registry.blobs import BlobStore
from registry.db import Registry, open_registry, sqlite_url

CONFIG_NAME = "lorastrap.toml"
STATE_DIR = ".lorastrap"
ENV_VAR = "LORASTRAP_WORKSPACE"


@dataclass
class Workspace:
    root: Path
    config: Config

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

    def open_registry(self) -> Registry:
        self.state_dir.mkdir(exist_ok=True)
        try:
            return open_registry(self.database_url)
        except UserError:
            raise
        except Exception as exc:  # a wrong URL or unreachable server is a user problem
            raise UserError(
                f"cannot open the registry at {self.database_url!r}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}; check [workspace] database_url"
            ) from exc


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
        atomic_write_text(config_path, DEFAULT_TOML.format(base_model=base_model))
    ws = load_workspace(root)
    for d in (ws.state_dir, ws.characters_dir, ws.inbox_dir):
        d.mkdir(parents=True, exist_ok=True)
    ws.open_registry().close()
    return ws, created
