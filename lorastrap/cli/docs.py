"""The CLI reference (docs/cli.md), generated from the click help so that it cannot drift.

Regenerate after changing any command: `python -m lorastrap.cli.docs > docs/cli.md`
(tests/test_cli_docs.py fails while the file differs from what this module renders).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import click

# A fixed width: the help text must not depend on the terminal that renders it.
WIDTH = 100
REGENERATE = "python -m lorastrap.cli.docs > docs/cli.md"


@dataclass(frozen=True)
class CommandDoc:
    path: str  # "lorastrap character add"
    depth: int  # 0 for the root
    short_help: str
    help_text: str


def _context(cmd: click.Command, name: str, parent: click.Context | None) -> click.Context:
    extra = dict(cmd.context_settings)
    if parent is None:
        extra.update(terminal_width=WIDTH, max_content_width=WIDTH)
    return click.Context(cmd, parent=parent, info_name=name, **extra)


def iter_commands(
    cmd: click.Command | None = None, name: str = "lorastrap", parent: click.Context | None = None,
    depth: int = 0,
) -> Iterator[CommandDoc]:
    """Every visible command, depth first in the order `--help` lists them (lazy groups included)."""
    if cmd is None:
        from lorastrap.cli import cli

        cmd = cli
    ctx = _context(cmd, name, parent)
    path = ctx.command_path
    yield CommandDoc(path, depth, cmd.get_short_help_str(limit=WIDTH), cmd.get_help(ctx))
    if isinstance(cmd, click.Group):
        for sub_name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from iter_commands(sub, sub_name, ctx, depth + 1)


def _anchor(path: str) -> str:
    """The id GitHub gives a heading like "`lorastrap character add`"."""
    return path.lower().replace(" ", "-")


def render_cli_reference() -> str:
    """docs/cli.md as markdown: a table of contents, then each command's full `--help` text."""
    docs = list(iter_commands())
    lines = [
        "# lorastrap command reference",
        "",
        f"Generated from the commands' own `--help` text; do not edit by hand. Regenerate with "
        f"`{REGENERATE}`.",
        "",
        "Every command that works on a workspace finds it by walking up from the current folder to "
        "the nearest `lorastrap.toml` (override with `--workspace DIR` or `LORASTRAP_WORKSPACE`). "
        "User errors print one line and exit with status 2; `--debug` adds the traceback.",
        "",
        "## Commands",
        "",
    ]
    for doc in docs[1:]:
        indent = "  " * (doc.depth - 1)
        lines.append(f"{indent}- [`{doc.path}`](#{_anchor(doc.path)}): {doc.short_help}")
    lines.append("")
    for doc in docs:
        level = "#" * min(2 + doc.depth, 6)
        lines += [f"{level} `{doc.path}`", "", "```text", doc.help_text.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_cli_reference())
