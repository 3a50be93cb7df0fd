"""`lorastrap tags show|add|remove|set NAME TAGS`."""

from __future__ import annotations

import click

from lorastrap.cli.common import echo_json, json_option, pass_app

role_option = click.option("--role", type=click.Choice(["identity", "variable", "negative"]),
                           default="identity", show_default=True)


@click.group()
def tags() -> None:
    """Edit a character's tag set (identity tags are pruned from character-round captions)."""


def _run(app, name: str, op: str, tag_text: str, role: str, as_json: bool = False) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.characters import edit_tags

    result = edit_tags(app.workspace(), name, op, [tag_text] if tag_text else [], role)
    if as_json:
        echo_json({"role": role, "tags": result})
    else:
        click.echo(f"{role} tags: {', '.join(result) if result else '(none)'}")


@tags.command("show")
@click.argument("name")
@role_option
@json_option
@pass_app
def show(app, name: str, role: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Print the tags of one role."""
    _run(app, name, "show", "", role, as_json)


def _edit_command(op: str, help_text: str) -> click.Command:
    @click.argument("name")
    @click.argument("tag_text")
    @role_option
    @pass_app
    def command(app, name: str, tag_text: str, role: str) -> None:  # type: ignore[no-untyped-def]
        _run(app, name, op, tag_text, role)

    command.__doc__ = help_text
    return tags.command(op)(command)


_edit_command("add", "Add comma-separated tags (kept in order, duplicates ignored).")
_edit_command("remove", "Remove comma-separated tags.")
_edit_command("set", "Replace the tags of a role.")
