"""Alembic, driven programmatically from the migrations shipped as package data."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

import migrations
from registry.errors import RegistryError
from registry.models import Base


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["engine"] = engine
    cfg.attributes["target_metadata"] = Base.metadata
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    # Parsing the migration scripts costs ~8 ms; every command opens the registry, so parse once.
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision this version of lorastrap ships a migration for."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def check_known(current: str | None, where: str) -> None:
    """Refuse a registry stamped with a revision this lorastrap does not know: a newer lorastrap
    wrote it, and migrating (or even reading) it with this one could lose data."""
    if current is not None and current not in known_revisions():
        raise RegistryError(
            f"the registry {where} is at schema revision {current}, which this lorastrap does not know "
            f"(it knows up to {head_revision()}): a newer lorastrap wrote it; upgrade lorastrap "
            "(pip install -U lorastrap) to use it")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    current = current_revision(engine)
    if revision == "head" and current == head_revision():
        return
    check_known(current, _where(engine))
    if revision != "head" and revision not in known_revisions():
        raise RegistryError(f"unknown revision {revision!r}; known: {', '.join(sorted(known_revisions()))} or head")
    try:
        command.upgrade(alembic_config(engine), revision)
    except CommandError as exc:  # e.g. a target below the current revision
        raise RegistryError(f"cannot upgrade the registry {_where(engine)} to {revision}: {exc}") from None


def _where(engine: Engine) -> str:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
