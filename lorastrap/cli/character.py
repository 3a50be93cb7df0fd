"""`lorastrap character add|list|show|rm`."""

from __future__ import annotations

from pathlib import Path

import click

from lorastrap.cli.common import echo_json, echo_table, json_option, pass_app


@click.group()
def character() -> None:
    """Register and inspect characters."""


@character.command("add")
@click.argument("name")
@click.option("--image", "images", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Seed image; repeat for 4 or more images.")
@click.option("--tags", required=True, help='Identity tags, Danbooru style: "1girl, solo, fox ears".')
@click.option("--trigger", help="Trigger word (default: generated from the name, rare-token style).")
@click.option("--crop", type=click.Choice(["zoom", "quad", "none"]),
              help="How one image becomes 4 (default zoom; none with 4+ images).")
@click.option("--seed-tags", default="",
              help='What the seed images show that is not the character: view, art style '
                   '("from front, flat color"). Kept in every caption; the style is carried into '
                   'candidate prompts.')
@click.option("--base-model", help="Base model of this character (folder, .safetensors, hub id, tiny[:sdxl]); "
                                  "default: the workspace's.")
@pass_app
def add(app, name: str, images: tuple[Path, ...], tags: str, trigger: str | None, crop: str | None,  # type: ignore[no-untyped-def]
        seed_tags: str, base_model: str | None) -> None:
    """Register a character from one image (cropped into 4) or from 4+ images."""
    from lorastrap.characters import add_character

    r = add_character(app.workspace(), name, list(images), tags, trigger=trigger, crop=crop,
                      seed_tags=seed_tags, base_model=base_model)
    for note in r.notes:
        click.echo(f"note: {note}")
    click.echo(f"added {r.slug}: trigger {r.trigger!r}, base model {r.base_model}, {len(r.seed_images)} seed image(s)"
               + (f" → {len(r.crops)} crops" if r.crops else ""))
    click.echo(f"dataset v{r.dataset_version}: {r.dataset_items} items (kohya layout) in {r.dataset_dir}")
    click.echo(f"next: {r.next_command}")


@character.command("list")
@json_option
@pass_app
def list_(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List characters with stage, dataset version and LoRA count."""
    from lorastrap.characters import list_characters

    rows = list_characters(app.workspace())
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("no characters yet; add one with `lorastrap character add`")
    else:
        echo_table(rows, ["slug", "name", "trigger", "stage", "round", "dataset_version", "loras"])


@character.command("show")
@click.argument("name")
@json_option
@pass_app
def show(app, name: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Trigger, tags, dataset versions and LoRAs of a character."""
    from lorastrap.characters import show_character

    info = show_character(app.workspace(), name)
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['name']} ({info['slug']})  trigger: {info['trigger']}  stage: {info['stage']}")
    click.echo(f"identity tags: {', '.join(info['identity_tags'])}")
    click.echo(f"base model: {info['base_model']}   folder: {info['folder']}")
    click.echo("dataset versions:")
    for v in info["dataset_versions"]:
        click.echo(f"  v{v['version']}  {v['kind']:<9} {v['items']:>4} items  {v['manifest']}  {v['created_at']}")
    click.echo("loras:" + ("" if info["loras"] else " none yet"))
    for l in info["loras"]:
        click.echo(f"  #{l['id']}  {l['kind']:<9} {l['name']}  {l['sha256']}  parent: {l['parent'] or '-'}")


@character.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--purge-files", is_flag=True, help="Also delete the character's folder (curated images!).")
@pass_app
def rm(app, name: str, yes: bool, purge_files: bool) -> None:  # type: ignore[no-untyped-def]
    """Remove a character from the registry (its folder is kept unless --purge-files)."""
    from lorastrap.characters import remove_character

    if not yes:
        click.confirm(f"remove character {name!r} from the registry?", abort=True)
    r = remove_character(app.workspace(), name, purge_files=purge_files)
    click.echo(f"removed {r['slug']}" + (f"; folder kept: {r['folder']}" if r["folder_kept"] else ""))
