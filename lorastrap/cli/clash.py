"""`lorastrap style add|list` and `lorastrap clash NAME …` / `lorastrap clash fix NAME …`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from lorastrap.clash.options import ClashOptions
from lorastrap.cli import params
from lorastrap.cli.common import echo_json, echo_table, json_option, pass_app
from lorastrap.cli.options import dataclass_options, from_options
from lorastrap.kernel.errors import UserError


def _names(values: tuple[str, ...]) -> list[str]:
    return [n for v in values for n in v.split(",") if n.strip()]


@click.group()
def style() -> None:
    """External style LoRAs to test the character against."""


@style.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name used in `clash --styles` and in prompts.")
@click.option("--trigger", help="Trigger words of the style (default: the file's modelspec.trigger_phrase, else "
                                 "the tags in nearly every training caption per its ss_tag_frequency).")
@click.option("--character", help="Check names and shapes against this character's base model "
                                   "(default: the workspace's).")
@click.option("--replace", is_flag=True, help="Replace a style registered under the same name.")
@pass_app
def style_add(app, path: Path, name: str, trigger: str | None, character: str | None, replace: bool) -> None:  # type: ignore[no-untyped-def]
    """Validate a LoRA file (names, shapes, values, architecture against the base model) and register it."""
    from lorastrap.clash.styles import add_style

    info = add_style(app.workspace(), path, name, trigger=trigger, character=character, replace=replace)
    click.echo(f"registered style {info.name} (#{info.id}): {info.arch or 'unknown arch'}, {info.key_format} keys, "
               f"{info.modules} modules, rank {info.rank}; checked against the {info.checked_against}")
    if info.proposal is not None:
        click.echo(f"trigger: {info.trigger!r}, proposed from the file's training captions ({info.proposal.describe()}); "
                   f"pass --trigger WORDS to change it or --trigger '' for none")
    elif info.trigger:
        click.echo(f"trigger: {info.trigger!r} (from {info.trigger_source})")
    else:
        click.echo("trigger: none (the file names none); pass --trigger WORDS if the style needs words in the prompt")
    for warning in info.warnings[:3]:
        click.echo(f"note: {warning}")
    click.echo(f"next: lorastrap clash CHARACTER --styles {info.name}")


@style.command("list")
@json_option
@pass_app
def style_list(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List registered style LoRAs (external and compat)."""
    from lorastrap.clash.styles import list_styles

    rows = list_styles(app.workspace())
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("no styles yet; add one with `lorastrap style add PATH --name NAME`")
    else:
        echo_table(rows, ["id", "name", "kind", "arch", "trigger", "sha256", "path"])


class _DefaultRun(click.Group):
    """`clash NAME …` runs the grid; `clash fix NAME …` is the subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultRun)
def clash() -> None:
    """Style-clash report: does the character survive other style LoRAs, and how to make it.

    \b
    lorastrap clash NAME --styles A [B ...] [--weights 0.3,0.6,1.0] [--seeds 2] [--out DIR]
    lorastrap clash NAME --styles A --weights-only       (weight space only, no images)
    lorastrap clash fix NAME --style A [--out FILE]      (compat style LoRA + before/after)
    See `lorastrap clash NAME --help` for every grid option.
    """


def _options(styles: list[str], out: Path | None, kw: dict):  # type: ignore[no-untyped-def]
    """ClashOptions from the command's keyword arguments, with the metrics `--identity` names."""
    options = from_options(ClashOptions, kw, styles=styles, out=out)
    return replace(options, metrics=metric_source(options.identity))


def metric_source(name: str):  # type: ignore[no-untyped-def]
    """`--identity`: None for the embedding metrics, the lab's reader for `lab-reader`."""
    if name == "embedding":
        return None
    if name == "lab-reader":
        from lorastrap.lab.scoring import ReaderMetrics

        return ReaderMetrics()
    raise UserError(f"unknown identity metric {name!r}; use embedding or lab-reader")


@clash.command("run", hidden=True)
@click.argument("name")
@click.argument("more_styles", nargs=-1)
@click.option("--styles", "styles", multiple=True, help="Style names (space- or comma-separated).")
@click.option("--out", type=click.Path(path_type=Path), help="Report folder (default: the character's exports/clash/).")
@click.option("--weights-only", is_flag=True, help="Weight-space analysis only: no generation, seconds.")
@dataclass_options(ClashOptions)
@json_option
@pass_app
def run_cmd(app, name: str, more_styles: tuple[str, ...], styles: tuple[str, ...], out: Path | None,  # type: ignore[no-untyped-def]
            weights_only: bool, as_json: bool, **kw) -> None:
    """Generate the clash grid of NAME with each style and write the report (HTML, JSON, sheets)."""
    names = _names(styles) + _names(more_styles)
    if weights_only:
        from lorastrap.clash.run import analyse_weights

        result = analyse_weights(app.workspace(), name, names, _options(names, out, kw).lora_id)
        if as_json:
            echo_json(result)
            return
        for style_name in result["ranking"]:
            ws = result["styles"][style_name]
            click.echo(f"{style_name}: {ws['shared_modules']} shared modules, cosine {ws['overall_cosine']:+.3f}, "
                       f"energy in the character's subspace {ws['overall_projection_energy']:.3f}; "
                       f"flagged: {', '.join(ws['flagged_blocks']) or 'none'}")
            echo_table([{**{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in b.items()},
                          "reasons": "; ".join(b["reasons"]) or "-"} for b in ws["blocks"]],
                       ["block", "modules", "cosine", "projection_energy", "chance", "style_share", "reasons"])
        return
    from lorastrap.clash.run import run_clash

    outcome = run_clash(app.workspace(), name, _options(names, out, kw))
    if as_json:
        echo_json({"run_id": outcome.run_id, "html": str(outcome.html), "json": str(outcome.json),
                   "ranking": outcome.ranking, "advice": outcome.advice, "notes": outcome.notes})
        return
    if outcome.weak_metric:
        click.echo("note: identity is measured with the WEAK model-free embedder; set LORASTRAP_CLIP_MODEL for CLIP")
    echo_table([{**r, "mean_clash": f"{r['mean_clash']:.3f}"} for r in outcome.ranking],
               ["rank", "style", "mean_clash", "max_safe_weight", "verified"])
    for advice in outcome.advice:
        click.echo(f"{advice['style']}: {advice['a1111']}  ({advice['reason']})")
    for style_name, note in outcome.notes.items():
        click.echo(f"{style_name}: {note}")
    click.echo(f"report: {outcome.html} ({outcome.cells} images; run #{outcome.run_id})")


@clash.command("fix")
@click.argument("name")
@click.option("--style", "style_name", required=True, help="The style LoRA to make compatible.")
@click.option("--out", type=click.Path(path_type=Path), help="Compat LoRA file (.safetensors).")
@click.option("--energy", type=params.floats(0, 1, lo_open=True), default=1.0, show_default=True,
              help="Share of the character's update energy whose directions are removed (1 = all).")
@click.option("--only-flagged", is_flag=True, help="Project only in the blocks the weight-space analysis flags.")
@click.option("--no-grid", is_flag=True, help="Write the file only; skip the before/after grid.")
@click.option("--report-out", type=click.Path(path_type=Path), help="Before/after report folder.")
@dataclass_options(ClashOptions)
@pass_app
def fix_cmd(app, name: str, style_name: str, out: Path | None, energy: float, only_flagged: bool,  # type: ignore[no-untyped-def]
            no_grid: bool, report_out: Path | None, **kw) -> None:
    """Write a compat style LoRA with the character's subspace projected out, and show before/after."""
    from lorastrap.clash.compat import fix_style

    r = fix_style(app.workspace(), name, style_name, out, energy=energy, only_flagged=only_flagged, grid=not no_grid,
                  report_out=report_out, options=_options([style_name], None, kw))
    click.echo(f"wrote {r.path} (LoRA #{r.lora_id}): style energy in the character's subspace "
               f"{r.energy_before:.3f} → {r.energy_after:.3f}, {r.kept_energy:.1%} of the style kept")
    for row in r.before_after:
        click.echo(f"  style {row['style_weight']:g}: retention {row['retention_before']:.2f} → {row['retention_after']:.2f}, "
                   f"style gain {row['style_gain_before']:.2f} → {row['style_gain_after']:.2f}")
    if r.report_html:
        click.echo(f"report: {r.report_html}")
