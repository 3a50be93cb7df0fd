"""`lorastrap model tiny|info`: the built-in tiny model and base-model inspection."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option


@click.group("model")
def model() -> None:
    """Base models: build the tiny test model, inspect a model."""


@model.command("tiny")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the diffusers model into (replaced if it exists).")
@click.option("--arch", type=click.Choice(["sd15", "sdxl"]), default="sd15", show_default=True)
@click.option("--seed", type=params.SEED, default=0, show_default=True)
@click.option("--single-file", is_flag=True,
              help="Write OUT.safetensors in the original (ldm/sgm) checkpoint layout plus its config folder OUT/ "
                   "(what --base-model OUT.safetensors reads), instead of a diffusers folder.")
def tiny(out_dir: Path, arch: str, seed: int, single_file: bool) -> None:
    """Build the tiny random-weight SD 1.x / SDXL model, offline and deterministically."""
    from lorastrap.models.base import resolve_base_model
    from lorastrap.models.single_file import build_tiny_single_file
    from lorastrap.models.tiny import build_tiny_model

    if single_file:
        path = build_tiny_single_file(out_dir.with_name(out_dir.name + ".safetensors"), arch, seed)
    else:
        path = build_tiny_model(out_dir, arch, seed)
    click.echo(f"built tiny {arch} model (seed {seed}) in {path}; sha256 {resolve_base_model(path).sha256}")


@model.command("info")
@click.argument("spec")
@json_option
def info(spec: str, as_json: bool) -> None:
    """Kind, architecture and hash of a base model (folder, .safetensors file, hub id, tiny)."""
    from lorastrap.models.base import resolve_base_model

    ref = resolve_base_model(spec)
    data = {"spec": ref.path_or_id, "kind": ref.kind, "arch": ref.arch, "sha256": ref.sha256,
            "path": str(ref.local_path) if ref.local_path else None}
    if as_json:
        echo_json(data)
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")
