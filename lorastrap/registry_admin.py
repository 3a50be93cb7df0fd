"""Registry schema status and upgrades for `lorastrap db`."""

from __future__ import annotations

from typing import Any

from lorastrap.workspace import Workspace
from registry.db import open_registry
from registry.migrate import head_revision, upgrade


def registry_status(ws: Workspace, migrate: bool = False) -> dict[str, Any]:
    ws.state_dir.mkdir(exist_ok=True)
    with open_registry(ws.database_url, migrate=migrate) as reg:
        return {"url": ws.database_url, "current": reg.current_revision(), "head": head_revision()}


def upgrade_registry(ws: Workspace, revision: str = "head") -> tuple[str | None, str | None]:
    ws.state_dir.mkdir(exist_ok=True)
    with open_registry(ws.database_url, migrate=False) as reg:
        before = reg.current_revision()
        upgrade(reg.engine, revision)
        return before, reg.current_revision()
