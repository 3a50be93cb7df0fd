"""`lorastrap db current|upgrade|check|backup`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from lorastrap.cli.common import echo_json, json_option, pass_app


@click.group()
def db() -> None:
    """The registry: schema migrations (applied automatically when it is opened), checks, backups."""


@db.command("current")
@pass_app
def current(app) -> None:  # type: ignore[no-untyped-def]
    """Print the registry's schema revision and the newest one."""
    from lorastrap.db.admin import registry_status

    st = registry_status(app.workspace(), migrate=False)
    note = ("" if st["current"] == st["head"] else "  (run `lorastrap db upgrade`)" if st["known"]
            else "  (newer than this lorastrap: upgrade lorastrap to use this registry)")
    click.echo(f"{st['url']}\ncurrent: {st['current'] or '(empty)'}  head: {st['head']}{note}")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_app
def upgrade(app, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Apply pending migrations."""
    from lorastrap.db.admin import upgrade_registry

    before, after = upgrade_registry(app.workspace(), revision)
    click.echo(f"upgraded {before or '(empty)'} → {after}" if before != after else f"already at {after}")


@db.command("check")
@json_option
@pass_app
def check(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Integrity, schema revision, and rows vs files (exit 1 when something is wrong)."""
    from lorastrap.db.check import check_registry

    report = check_registry(app.workspace())
    if as_json:
        echo_json({**asdict(report), "ok": report.ok})
    else:
        click.echo(f"registry: {report.location}")
        click.echo(f"integrity: {'; '.join(report.integrity)}")
        click.echo(f"schema: {report.revision or '(not read)'} (head {report.head})")
        for line in report.problems:
            click.echo(f"problem: {line}")
        for line in report.notes:
            click.echo(f"note: {line}")
        click.echo("ok" if report.ok else f"{len(report.problems)} problem(s)")
    if not report.ok:
        click.get_current_context().exit(1)


@db.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace DEST when it is an existing file.")
@pass_app
def backup(app, dest: Path, overwrite: bool) -> None:  # type: ignore[no-untyped-def]
    """Copy the SQLite registry to DEST (a file, or a folder for a time-stamped file), online.

    The copy is consistent even while other lorastrap commands write. It holds the registry only:
    images, LoRA files and characters/ are files in the workspace — copy the folder for those.
    For a PostgreSQL registry use pg_dump.
    """
    from lorastrap.db.admin import backup_registry

    r = backup_registry(app.workspace(), dest, overwrite=overwrite)
    click.echo(f"backed up the registry to {r['path']} ({r['bytes']:,} bytes; integrity: {'; '.join(r['integrity'])})")
