"""`lorastrap export sprites`: sprite sheets for Godot 4/3, Unity and TexturePacker JSON."""

from __future__ import annotations

from dataclasses import asdict

import click

from lorastrap.cli.common import echo_json, json_option, pass_app
from lorastrap.cli.options import dataclass_options, from_options
from lorastrap.export.sprites import SpriteOptions


@click.group()
def export() -> None:
    """Export a character to game engines."""


@export.command("sprites")
@click.argument("name")
@dataclass_options(SpriteOptions)
@json_option
@pass_app
def sprites(app, name: str, as_json: bool, **options) -> None:  # type: ignore[no-untyped-def]
    """Background-removed sprite sheets of a character that engines import as animations.

    Writes page PNGs plus: Godot 4/3 SpriteFrames (.tres), Unity .png.meta, and for json a
    TexturePacker hash file (PixiJS, Phaser load.atlas) and an Aseprite file (Phaser
    load.aseprite + createFromAseprite). Fields: docs/formats-export.md.
    """
    from lorastrap.export.sprites import export_character_sprites

    summary = export_character_sprites(app.workspace(), name, from_options(SpriteOptions, options))
    if as_json:
        echo_json(asdict(summary))
        return
    animations = ", ".join(f"{k} ({v})" for k, v in summary.animations.items())
    click.echo(f"exported {summary.frames} frames of {summary.character} for {', '.join(summary.engines)} "
               f"to {summary.out_dir} (export #{summary.export_id})")
    click.echo(f"animations: {animations}")
    click.echo(f"pages: {', '.join(summary.pages)}  area used {summary.efficiency:.0%}  "
               f"remover: {summary.remover}")
    if summary.preview:
        click.echo(f"preview: {summary.preview}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
