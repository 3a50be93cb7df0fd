"""`lorastrap status|bootstrap|curate|captions|lineage` — the method, step by step."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, echo_table, json_option, pass_app


@click.command("status")
@click.argument("name", required=False)
@json_option
@pass_app
def status_cmd(app, name: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Stage, counts, view coverage and the exact next command."""
    from lorastrap.method.step import character_status

    statuses = character_status(app.workspace(), name)
    if as_json:
        echo_json([st.as_dict() for st in statuses])
        return
    for st in statuses:
        click.echo(f"{st.slug}: stage {st.stage} (round {st.round}) · {st.seed_count} seed + "
                   f"{st.curated_count} curated" + (f" / {st.threshold} needed" if st.threshold else "")
                   + f" · base model {st.base_model}")
        click.echo("  views: " + ", ".join(f"{v} {n}" for v, n in st.view_coverage.items()))
        if st.candidate_yield:
            click.echo("  candidates kept / generated: " + ", ".join(
                f"{v} {y['kept']}/{y['generated']}" + (f" ({y['passed']} passed the assist)" if y["passed"] is not None else "")
                for v, y in st.candidate_yield.items()))
        finals = [l for l in st.loras if l["kind"] == "character"][-1:]
        if finals and st.stage == "character_trained":
            style = [l for l in st.loras if l["kind"] == "style"][-1:]
            click.echo("  final LoRAs: " + ", ".join(f"{l['name']} (#{l['id']})" for l in style + finals)
                       + f" — compare their sample grids (lorastrap lineage {st.slug} --format json)")
        if st.recommended:
            r = st.recommended
            others = ", ".join(f"{n} {p:.2f}" for n, p in r["others"].items())
            click.echo(f"  check: prefers {r['name']} (LoRA #{r['id']}) prompted like \"{r['prompt']}\": the "
                       f"assist passed {r['passed']:.2f} of its images" + (f" (vs {others})" if others else "")
                       + " — a weak signal, see docs/method.md")
        if st.suggested:
            g = st.suggested
            click.echo(f"  use: {g['name']} (LoRA #{g['id']}) prompted \"{g['prompt']}, <view>\" — {g['why']}; "
                       "the character LoRA is the one to prompt with its trigger alone")
        click.echo(f"  next: {st.next_step}" + (f" — not yet: {st.reason}" if not st.ready else ""))
        click.echo(f"  run:  {st.next_command}")


@click.command("bootstrap")
@click.argument("name")
@click.option("--auto-curate", type=params.ints(1, 1000), default=None,
              help="Keep the N best-ranked candidates automatically (assist ranking; default: none).")
@pass_app
def bootstrap_cmd(app, name: str, auto_curate: int | None) -> None:  # type: ignore[no-untyped-def]
    """Run the next step of the method (train a round, generate candidates, or the character LoRA)."""
    from lorastrap.method.step import bootstrap_step

    result = bootstrap_step(app.workspace(), name, auto_curate=auto_curate)
    for line in result.messages:
        click.echo(line)
    click.echo(f"next: {result.next_command}")


@click.command("curate")
@click.argument("name")
@click.option("--keep", multiple=True, type=click.Path(path_type=Path), help="Candidate to keep (repeatable).")
@click.option("--reject", multiple=True, type=click.Path(path_type=Path), help="Candidate to set aside.")
@pass_app
def curate_cmd(app, name: str, keep: tuple[Path, ...], reject: tuple[Path, ...]) -> None:  # type: ignore[no-untyped-def]
    """Keep or reject candidates (same as copying files into curated/)."""
    from lorastrap.method.curation import curate

    r = curate(app.workspace(), name, keep, reject)
    click.echo(f"curated: {r.total} dataset items" + (f"; new dataset v{r.version}" if r.created else "; no change"))


@click.command("captions")
@click.argument("name")
@click.option("--kind", type=click.Choice(["style", "character"]), help="Caption policy (default: next training's).")
@json_option
@pass_app
def captions_cmd(app, name: str, kind: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Preview the captions of the next dataset version (nothing is written)."""
    from lorastrap.method.curation import preview_captions

    rows = preview_captions(app.workspace(), name, kind)
    echo_json(rows) if as_json else echo_table(rows, ["image", "origin", "repeats", "caption"])


@click.command("lineage")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text", show_default=True)
@pass_app
def lineage_cmd(app, name: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """Seed → style rounds → character LoRA, with dataset versions and image counts."""
    from lorastrap.method.lineage import lineage_tree, render_lineage

    click.echo(render_lineage(lineage_tree(app.workspace(), name), fmt))
