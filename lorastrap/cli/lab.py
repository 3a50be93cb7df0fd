"""`lorastrap lab pretrain|eval|read|draw`: the fidelity lab (procedural world, reader, lab model)."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option, parse_floats


@click.group("lab")
def lab() -> None:
    """The fidelity lab: a world with known attributes, its reader, the lab model, the benchmark."""


@lab.command("pretrain")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model folder to write (replaced when done).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=params.SEED, default=0, show_default=True)
@click.option("--time-budget-s", type=params.floats(0, 1e7, lo_open=True), default=300.0, show_default=True,
              help="Whole-run budget that sizes the VAE and UNet phases.")
@click.option("--vae-steps", type=params.TRAIN_STEPS, help="Fixed VAE steps (overrides the budget for that phase).")
@click.option("--unet-steps", type=params.TRAIN_STEPS, help="Fixed UNet+text-encoder steps.")
@click.option("--n-images", type=params.ints(1, 10_000_000), help="Drawn training images (default 50000 GPU / 3000 CPU).")
@click.option("--resume", is_flag=True, help="Continue from OUT.ckpt/ after an interruption.")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a contact sheet of evaluation images here.")
@click.option("--no-progress", is_flag=True)
def pretrain_cmd(out: Path, device: str, seed: int, time_budget_s: float, vae_steps: int | None,
                 unet_steps: int | None, n_images: int | None, resume: bool, sheet: Path | None,
                 no_progress: bool) -> None:
    """Train the lab model (VAE, UNet, text encoder) from scratch on the procedural world."""
    from lorastrap.lab.pretrain import PretrainOptions, pretrain

    record = pretrain(PretrainOptions(out=out, device=device, seed=seed, time_budget_s=time_budget_s,
                                      vae_steps=vae_steps, unet_steps=unet_steps, n_images=n_images,
                                      resume=resume, sheet=sheet, progress=not no_progress))
    click.echo(f"lab model written to {out} (all-attribute accuracy of generations: "
               f"{record['generated']['all_views']['all']:.2f})")


@lab.command("eval")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json, tables.md and contact sheets.")
@click.option("--characters", type=params.ints(1, 1000), default=4, show_default=True, help="Held-out characters to use.")
@click.option("--seeds", type=params.ints(1, 1000), default=8, show_default=True, help="Images per view and arm.")
@click.option("--pick", type=params.TEXT, help="Held-out characters by index (0-9, comma-separated) instead of the first N.")
@click.option("--views", type=params.TEXT, default="from front,from side,from behind", show_default=True)
@click.option("--lora-steps", type=params.ints(1, 100_000), default=150, show_default=True)
@click.option("--style-weights", default="0.5,0.75,1.0", show_default=True,
              help="Style LoRA weights of the style-survival part (0 = the character alone).")
@click.option("--no-style", is_flag=True, help="Skip the style-survival part.")
@click.option("--reference-arms", type=params.TEXT, default="a,a0,b,b+", show_default=True,
              help="Which reference arms to measure: (a) base with tags, (a0) base with the trigger, "
                   "(b) seed LoRA, (b+) seed LoRA with tags.")
@click.option("--bootstrap", is_flag=True, help="Also run the whole method per character: arm (c).")
@click.option("--curator", type=click.Choice(["assist", "careful"]), default="assist", show_default=True,
              help="Who curates in arm (c): the product's assist, or a careful person SIMULATED by the "
                   "lab's reader (benchmark only; the product never uses the reader).")
@click.option("--set", "levers", type=params.TEXT, multiple=True, metavar="KEY=VALUE",
              help="A setting of arm (c)'s workspace, e.g. bootstrap.candidate_weight=0.8 or "
                   "training.character.max_train_steps=400 (repeatable).")
@click.option("--jobs", type=params.ints(1, 256), default=1, show_default=True,
              help="Processes, characters split between them (a GPU is mostly idle with one).")
@click.option("--device", default=None, help="cpu, cuda, ... (default: best available).")
@json_option
def eval_cmd(out: Path, characters: int, pick: str | None, seeds: int, views: str, lora_steps: int,  # type: ignore[no-untyped-def]
             style_weights: str, no_style: bool, reference_arms: str, bootstrap: bool, curator: str,
             levers: tuple[str, ...], jobs: int, device: str | None, as_json: bool) -> None:
    """Fidelity benchmark: per-view accuracy of base, seed LoRA (and bootstrap rounds with their
    yield), style survival."""
    from lorastrap.lab.arms import FidelityConfig
    from lorastrap.lab.eval import run_fidelity
    from lorastrap.lab.eval_parallel import run_fidelity_parallel
    from lorastrap.lab.loras import LoraRecipe
    from lorastrap.lab.world import HELD_OUT, VIEWS
    from lorastrap.models.threads import use_small_model_threads

    if device in (None, "cpu"):
        use_small_model_threads()
    weights = tuple(parse_floats(style_weights, "--style-weights"))
    indices = None
    if pick:
        try:
            indices = tuple(int(i) for i in pick.split(",") if i.strip())
        except ValueError:
            indices = ()
        if not indices or any(not 0 <= i < len(HELD_OUT) for i in indices) or len(set(indices)) != len(indices):
            raise click.BadParameter(f"give distinct indices 0-{len(HELD_OUT) - 1}, e.g. 1,2,9", param_hint="--pick")
    arms = tuple(a.strip() for a in reference_arms.split(",") if a.strip())
    if not set(arms) <= {"a", "a0", "b", "b+"}:
        raise click.BadParameter("choose from a, a0, b, b+", param_hint="--reference-arms")
    cfg = FidelityConfig(characters=len(indices) if indices else characters, seeds=seeds, device=device,
                         style_weights=weights, views=tuple(v.strip() for v in views.split(",") if v.strip()),
                         recipe=LoraRecipe(steps=lora_steps), character_indices=indices, reference_arms=arms)
    hook = None
    if (curator != "assist" or levers) and not bootstrap:
        raise click.UsageError("--curator and --set change arm (c): add --bootstrap")
    if bootstrap:
        from lorastrap.lab.method_arm import LabMethodArm, MethodSettings, check_settings, parse_levers

        extra_bootstrap, extra_training = parse_levers(levers)
        settings = MethodSettings(curator=curator, bootstrap=extra_bootstrap, training=extra_training)
        check_settings(settings, VIEWS)
        hook = LabMethodArm(settings)
    if jobs > 1:
        report = run_fidelity_parallel(out, cfg, jobs, bootstrap=hook, style_survival=not no_style,
                                       progress=not as_json)
    else:
        report = run_fidelity(out, cfg, bootstrap=hook, style_survival=not no_style, progress=not as_json)
    if as_json:
        echo_json(report["results"])
    else:
        click.echo(report["tables"])


@lab.command("read")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def read_cmd(images: tuple[Path, ...], as_json: bool) -> None:
    """Read the attributes (hair, ears, tail, dress, view, style) of lab-world images."""
    from lorastrap.lab.reader import read_files

    rows = read_files(images)
    if as_json:
        echo_json(rows)
    else:
        for row in rows:
            click.echo(f"{row['file']}: " + ", ".join(f"{k}={v}" for k, v in row["attrs"].items()))


@lab.command("draw")
@click.option("--character", "slug", required=True,
              help="Character slug, e.g. blonde-fox-tail-blue (hair-ears-tail-dress).")
@click.option("--views", type=params.TEXT, default="from front", show_default=True, help="Comma-separated views.")
@click.option("--style", default="flat color", show_default=True)
@click.option("--count", type=params.ints(1, 10_000), default=4, show_default=True, help="Images per view.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def draw_cmd(slug: str, views: str, style: str, count: int, out: Path) -> None:
    """Draw ground-truth images of a character (PNG + Danbooru caption .txt)."""
    from lorastrap.lab.world import write_drawings

    paths = write_drawings(slug, [v.strip() for v in views.split(",") if v.strip()], style, count, out)
    click.echo(f"wrote {len(paths)} images to {out}")
