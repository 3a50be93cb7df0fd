"""`lorastrap export sprites`: sprite sheets for Godot 4/3, Unity and TexturePacker JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option, pass_app


@click.group()
def export() -> None:
    """Export a character to game engines."""


@export.command("sprites")
@click.argument("name")
@click.option("--engine", "engines", multiple=True, default=("godot4",), show_default=True,
              help="godot4, godot3, unity, json (PixiJS/Phaser) or all; repeat or comma-separate. "
              "With several engines each gets its own sub-folder of --out named after it.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: characters/<name>/exports/sprites). Unity: .meta files "
              "already there keep their GUID and sprite ids.")
@click.option("--godot-res", type=params.TEXT, help="The res:// path of --out in your Godot project, e.g. "
              "res://sprites/hero; the .tres then loads its textures from there (with several "
              "engines: from <res>/godot4/ or <res>/godot3/). Default: paths relative to the .tres, "
              "which load wherever the folder is copied.")
@click.option("--from", "source", help="Frame folder: candidates/r2 (of the character) or any folder "
              "(default: curated/).")
@click.option("--animation", "animations", multiple=True, metavar="NAME=GLOB",
              help="One animation per glob, frames in natural order; repeatable.")
@click.option("--animation-name", "animation", type=params.NAME, default="idle", show_default=True,
              help="Animation name for a folder of frames (without --animation).")
@click.option("--fps", type=params.floats(0, 240, lo_open=True), default=8.0, show_default=True, help="Animation speed.")
@click.option("--loop/--no-loop", default=True, show_default=True)
@click.option("--size", type=params.ints(1, 16384), help="Character height in px (one scale for all frames).")
@click.option("--pixel-art", is_flag=True, help="Nearest-neighbour scaling, hard alpha, point filter.")
@click.option("--palette", type=params.ints(2, 256), help="With --pixel-art: reduce to N shared colours.")
@click.option("--remover", default="flood", show_default=True,
              help="flood[:TOLERANCE], none, rembg:MODEL (e.g. isnet-anime) or rembg:/path/model.onnx.")
@click.option("--pack", type=click.Choice(["grid", "tight"]), default="grid", show_default=True)
@click.option("--padding", type=params.ints(0, 256), default=2, show_default=True, help="Empty px around each frame.")
@click.option("--extrude", type=params.ints(0, 64), default=1, show_default=True, help="Edge px repeated around each frame.")
@click.option("--max-texture-size", type=params.ints(16, 16384), default=4096, show_default=True)
@click.option("--pot", "power_of_two", is_flag=True, help="Power-of-two page sizes.")
@click.option("--pivot", default="0.5,1", show_default=True, help="Pivot X,Y as fractions, y down.")
@click.option("--directions", is_flag=True, help="Direction rows (down, up, side, other_side) from view tags.")
@click.option("--mirror-side", is_flag=True, help="Mirror side views into the missing other side (flagged).")
@click.option("--ppu", "pixels_per_unit", type=params.floats(0, 100000, lo_open=True), default=100.0, show_default=True,
              help="Unity pixels per unit.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@pass_app
def sprites(app, name: str, as_json: bool, no_progress: bool, **options) -> None:  # type: ignore[no-untyped-def]
    """Background-removed sprite sheets of a character that engines import as animations.

    Writes page PNGs plus: Godot 4/3 SpriteFrames (.tres), Unity .png.meta, and for json a
    TexturePacker hash file (PixiJS, Phaser load.atlas) and an Aseprite file (Phaser
    load.aseprite + createFromAseprite). Fields: docs/formats-export.md.
    """
    from lorastrap.export.sprites import SpriteOptions, export_character_sprites

    summary = export_character_sprites(app.workspace(), name,
                                       SpriteOptions(progress=not no_progress, **options))
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
