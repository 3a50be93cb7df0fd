"""`lorastrap dataset list|diff|export`."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, echo_table, json_option, pass_app


@click.group()
def dataset() -> None:
    """Immutable dataset versions of a character."""


@dataset.command("list")
@click.argument("name")
@json_option
@pass_app
def list_(app, name: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List dataset versions."""
    from lorastrap.dataset.versions import list_datasets

    rows = list_datasets(app.workspace(), name)
    echo_json(rows) if as_json else echo_table(rows, ["version", "kind", "items", "parent", "manifest", "note", "created_at"])


@dataset.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b")
@json_option
@pass_app
def diff(app, name: str, a: str, b: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """What changed between two versions (e.g. v2 v3)."""
    from lorastrap.dataset.versions import diff_datasets

    d = diff_datasets(app.workspace(), name, a, b)
    if as_json:
        echo_json(d)
        return
    for it in d["added"]:
        click.echo(f"+ {it['image']}: {it['caption']}")
    for it in d["removed"]:
        click.echo(f"- {it['image']}: {it['caption']}")
    for it in d["recaptioned"]:
        click.echo(f"~ {it['image']}: {it['before']!r} → {it['after']!r}")
    click.echo(f"{len(d['added'])} added, {len(d['removed'])} removed, {len(d['recaptioned'])} recaptioned")


@dataset.command("export")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Target folder.")
@click.option("--resolution", type=params.RESOLUTION, default=512, show_default=True, help="Resolution for dataset_config.toml.")
@pass_app
def export(app, name: str, version: str | None, out: Path | None, resolution: int) -> None:  # type: ignore[no-untyped-def]
    """Write a version in the kohya layout + sd-scripts dataset_config.toml (default: latest)."""
    from lorastrap.dataset.kohya import export_dataset

    r = export_dataset(app.workspace(), name, version, out, resolution)
    click.echo(f"{r['version']}: {r['items']} items → {r['out']} ({', '.join(r['folders'])})")
    click.echo(f"kohya: train_network.py --dataset_config {r['config']}")
