"""`lorastrap init`."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.config import DEFAULT_BASE_MODEL


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--base-model", type=params.TEXT, default=DEFAULT_BASE_MODEL, show_default=True,
              help="Default base model of the workspace (folder, hub id, .safetensors, tiny, tiny:sdxl, lab).")
def init_cmd(directory: str, base_model: str) -> None:
    """Create a workspace (lorastrap.toml + registry) in DIRECTORY."""
    from lorastrap.workspace import init_workspace, load_workspace

    existing = load_workspace(Path(directory)) if (Path(directory) / "lorastrap.toml").is_file() else None
    had_registry = existing is None or existing.registry_path is None or existing.registry_path.exists()
    ws, created = init_workspace(directory, base_model=base_model)
    click.echo(f"{'created' if created else 'already a'} workspace: {ws.root}")
    if not had_registry:
        click.echo(f"note: the registry was missing; started a new, empty one at {ws.registry_location} "
                   "(characters/ folders are not registered again: restore a backup to get them back)")
    click.echo(f"registry: {ws.database_url}")
    click.echo("next: lorastrap character add NAME --image seed.png --tags \"1girl, solo, ...\"")
