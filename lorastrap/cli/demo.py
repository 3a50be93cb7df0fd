"""`lorastrap demo`."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Workspace folder for the demo (default: a new temporary folder).")
@click.option("--small", is_flag=True, help="A reduced run (fewer images and steps), e.g. for CI.")
@click.option("--base-model", help="Base model (default: the shipped lab model, else tiny).")
@click.option("--character", type=params.TEXT, help="The held-out lab character to seed (default: the demo's; see docs/fidelity.md).")
def demo_cmd(directory: Path | None, small: bool, base_model: str | None, character: str | None) -> None:
    """Run the whole method end to end, offline: seed → style rounds → character LoRA → sprites."""
    from lorastrap.demo import run_demo

    run_demo(directory, "small" if small else "full", base_model, echo=click.echo, character=character)
