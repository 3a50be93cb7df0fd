"""`lorastrap generate NAME --views … --per-view N --seed S`: candidate images with the LoRA."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option, pass_app


@click.command("generate")
@click.argument("name")
@click.option("--lora", "lora_id", type=params.ID, help="LoRA id (default: the character's newest).")
@click.option("--views", type=params.TEXT, help='Comma-separated views, e.g. "from side,from behind" (default: workspace views).')
@click.option("--per-view", type=params.IMAGES_PER_VIEW, default=4, show_default=True, help="Images per view.")
@click.option("--seed", type=params.SEED, default=0, show_default=True, help="First seed; each image adds one.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: characters/NAME/candidates/r<round>/).")
@click.option("--prompt", "extra_prompt", type=params.TEXT, default="", help="Extra tags appended to every prompt.")
@click.option("--negative", type=params.TEXT, help="Negative prompt (default: the workspace's).")
@click.option("--steps", type=params.SAMPLING_STEPS, default=20, show_default=True)
@click.option("--cfg", type=params.CFG, default=6.0, show_default=True, help="CFG scale.")
@click.option("--weight", type=params.LORA_WEIGHT, default=1.0, show_default=True, help="LoRA weight.")
@click.option("--sampler", type=click.Choice(["ddim", "euler", "euler_a", "dpmpp_2m"]), default="ddim",
              show_default=True)
@click.option("--start-strength", type=params.STRENGTH,
              help="Start each image from a seed image's colour layout noised to this strength "
                   "(img2img, as the method's rounds do at 0.9; default: from pure noise).")
@json_option
@pass_app
def generate_cmd(app, name: str, lora_id: int | None, views: str | None, per_view: int, seed: int,  # type: ignore[no-untyped-def]
                 out_dir: Path | None, extra_prompt: str, negative: str | None, steps: int, cfg: float,
                 weight: float, sampler: str, start_strength: float | None, as_json: bool) -> None:
    """Generate NAME with its LoRA over views × seeds; PNGs carry A1111 parameters."""
    from lorastrap.method.generate import generate_candidates

    view_list = [v.strip() for v in views.split(",") if v.strip()] if views else None
    paths = generate_candidates(app.workspace(), name, view_list, per_view, seed, lora_id=lora_id,
                                out_dir=out_dir, extra_prompt=extra_prompt, negative=negative,
                                steps=steps, cfg=cfg, weight=weight, sampler=sampler, progress=not as_json,
                                start_strength=start_strength)
    if as_json:
        echo_json([str(p) for p in paths])
        return
    click.echo(f"generated {len(paths)} image(s) in {paths[0].parent if paths else out_dir}")
