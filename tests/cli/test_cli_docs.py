"""docs/cli.md is generated from the click help: it must match, and cover every command."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import click

from lorastrap.cli import COMMANDS, cli
from lorastrap.cli.docs import REGENERATE, render_cli_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_matches_the_commands() -> None:
    # A fresh process: click caches each command's help option the first time it renders, so a
    # group another test invoked on its own (without the root's `-h`) would render differently.
    expected = subprocess.run([sys.executable, "-m", "lorastrap.cli.docs"], check=True,
                              capture_output=True, text=True).stdout
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(
            actual.splitlines(keepends=True), expected.splitlines(keepends=True),
            "docs/cli.md", "generated"))[:60])
        raise AssertionError(f"docs/cli.md is out of date; regenerate it with `{REGENERATE}`\n{diff}")


def test_reference_covers_every_registered_command_and_subcommand() -> None:
    text = render_cli_reference()
    ctx = click.Context(cli, info_name="lorastrap")
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, f"COMMANDS[{name!r}] does not resolve"
        assert f"`lorastrap {name}`" in text
        for sub, sub_cmd in getattr(cmd, "commands", {}).items():
            if sub_cmd.hidden:
                continue
            assert f"`lorastrap {name} {sub}`" in text
    assert "Usage: lorastrap character add [OPTIONS] NAME" in text
    assert "--crop [zoom|quad|none]" in text  # option help is included, not just names


def test_rendering_does_not_depend_on_the_terminal(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render_cli_reference()
    monkeypatch.setenv("COLUMNS", "250")
    assert render_cli_reference() == narrow
