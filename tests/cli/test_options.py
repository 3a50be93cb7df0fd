"""Options declared once: a command family's dataclass is its click options, its library call and
its recorded settings (lorastrap.kernel.options, lorastrap.cli.options)."""

from __future__ import annotations

import dataclasses
import json

import click
import pytest

from lorastrap.clash.options import ClashOptions
from lorastrap.cli.options import from_options
from lorastrap.export.sprites import SpriteOptions
from lorastrap.kernel.options import recorded, spelling


def _command(*path: str) -> click.Command:
    from lorastrap.cli import cli

    ctx = click.Context(cli)
    command: click.Command = cli
    for name in path:
        command = command.get_command(ctx, name)  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("cls, path", [(SpriteOptions, ("export", "sprites")), (ClashOptions, ("clash", "run")),
                                       (ClashOptions, ("clash", "fix"))])
def test_every_declared_field_is_an_option_of_the_command(cls, path) -> None:  # type: ignore[no-untyped-def]
    options = {p.name: p for p in _command(*path).params if isinstance(p, click.Option)}
    for field in dataclasses.fields(cls):
        spell = spelling(field)
        if spell is None:  # given by each command its own way (`--styles`, `--out`) or library-only
            assert field.name in ("styles", "out") or field.name not in options
            continue
        assert field.name in options, field.name
        assert options[field.name].opts[0] == spell.decls[0].split("/")[0]


def test_command_line_values_build_the_dataclass_and_the_recorded_settings() -> None:
    command = _command("clash", "run")
    ctx = command.make_context("run", ["kitsune", "--styles", "ink", "--weights", "0.5,1", "--views",
                                       "front, from side", "--no-presets", "--seed", "7"])
    kw = dict(ctx.params)
    options = from_options(ClashOptions, kw, styles=["ink"], out=None)
    assert options.weights == (0.5, 1.0) and options.views == ["front", "from side"]
    assert options.presets is False and options.seed == 7 and options.identity == "embedding"
    assert "weights" not in kw and "name" in kw  # the command keeps only its own arguments
    settings = recorded(options)
    assert settings["weights"] == [0.5, 1.0] and settings["presets"] is False
    assert "styles" not in settings and "metrics" not in settings  # not options: given by the command
    json.dumps(settings)

    sprite = SpriteOptions(engines=("unity",), pixels_per_unit=32.0, progress=False)
    kept = recorded(sprite)
    assert kept["engines"] == ["unity"] and kept["pixels_per_unit"] == 32.0
    assert "progress" not in kept and "out" not in kept  # record=False


def test_defaults_show_as_the_command_line_writes_them() -> None:
    clash = {p.name: p for p in _command("clash", "run").params}
    assert clash["weights"].default == "0.3,0.6,1.0" and clash["weights"].show_default
    assert clash["presets"].opts == ["--no-presets"] and clash["presets"].default is True
    sprites = {p.name: p for p in _command("export", "sprites").params}
    assert sprites["loop"].opts == ["--loop"] and sprites["loop"].secondary_opts == ["--no-loop"]
    assert sprites["engines"].multiple and tuple(sprites["engines"].default) == ("godot4",)
