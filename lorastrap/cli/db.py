"""`lorastrap db current|upgrade`."""

from __future__ import annotations

import click

from lorastrap.cli.common import pass_app


@click.group()
def db() -> None:
    """Registry schema migrations (applied automatically when a registry is opened)."""


@db.command("current")
@pass_app
def current(app) -> None:  # type: ignore[no-untyped-def]
    """Print the registry's schema revision and the newest one."""
    from lorastrap.registry_admin import registry_status

    st = registry_status(app.workspace(), migrate=False)
    click.echo(f"{st['url']}\ncurrent: {st['current'] or '(empty)'}  head: {st['head']}"
               + ("" if st["current"] == st["head"] else "  (run `lorastrap db upgrade`)"))


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_app
def upgrade(app, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Apply pending migrations."""
    from lorastrap.registry_admin import upgrade_registry

    before, after = upgrade_registry(app.workspace(), revision)
    click.echo(f"upgraded {before or '(empty)'} → {after}" if before != after else f"already at {after}")
