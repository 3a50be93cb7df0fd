"""`lorastrap train NAME --kind style|character`: train and register a LoRA."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option, pass_app


def _parse_sets(sets: tuple[str, ...]) -> dict[str, Any]:
    """`--set key=value` pairs; values are read as TOML (numbers, booleans, lists), else text."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw.strip()
    return out


@click.command("train")
@click.argument("name")
@click.option("--kind", type=click.Choice(["style", "character"]), required=True, help="Which LoRA to train.")
@click.option("--dataset", "dataset_version", help="Dataset version (vN or N; default: the latest of this kind).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of training options (see docs/training.md).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run of this dataset version.")
@click.option("--init-from", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from this LoRA's weights (a new run on new data).")
@click.option("--base-model", help="Train on this base model (folder, .safetensors, hub id, tiny[:sdxl]); "
                                  "it becomes the character's base model. Default: the character's.")
@click.option("--steps", "max_train_steps", type=params.TRAIN_STEPS, help="Optimizer steps.")
@click.option("--rank", type=params.RANK, help="LoRA rank (network dim).")
@click.option("--alpha", type=params.ALPHA, help="LoRA alpha.")
@click.option("--lr", "learning_rate", type=params.LEARNING_RATE, help="Learning rate of the UNet LoRA.")
@click.option("--batch-size", type=params.BATCH_SIZE)
@click.option("--resolution", type=params.RESOLUTION, help="Training side length (default: the model's native size).")
@click.option("--mixed-precision", type=click.Choice(["no", "fp16", "bf16"]))
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None)
@click.option("--train-text-encoder/--no-train-text-encoder", default=None)
@click.option("--seed", type=params.SEED)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other training option.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
@pass_app
def train_cmd(app, name: str, kind: str, dataset_version: str | None, config_file: Path | None,  # type: ignore[no-untyped-def]
              resume: bool, init_from: Path | None, base_model: str | None, sets: tuple[str, ...], quiet: bool,
              as_json: bool, **options: Any) -> None:
    """Train the style or character LoRA of NAME on a dataset version and register it."""
    from lorastrap.kernel.progress import suppressed
    from lorastrap.method.train import train_character_lora

    overrides = {k: v for k, v in options.items() if v is not None}
    overrides.update(_parse_sets(sets))
    with suppressed(quiet or as_json):
        lora = train_character_lora(app.workspace(), name, kind, dataset_version=dataset_version,
                                    overrides=overrides, config_file=config_file, resume=resume,
                                    init_from=init_from, progress=not quiet and not as_json,
                                    base_model=base_model)
    if as_json:
        echo_json(lora.__dict__)
        return
    click.echo(f"trained {kind} LoRA #{lora.id} on dataset v{lora.dataset_version}: {lora.path}")
    click.echo(f"  sha256 {lora.sha256[:12]}…  steps {lora.steps}  final loss {lora.final_loss:.4f}")
    if lora.sample_grid:
        click.echo(f"  samples: {lora.sample_grid}")
    click.echo(f"  log: {lora.log_path}")
