"""Command options declared once: a dataclass of a command family is the single source for its
command-line options, the library call and the settings a run records.

A field declared with `option(...)` carries how a command line spells it (`lorastrap.cli.options`
turns the dataclass into click options and back); `recorded()` gives the settings to store. No
click here: the library modules that own the dataclasses do not import the CLI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Spelling:
    """How one option is spelled on the command line."""

    decls: tuple[str, ...]  # "--engine"; "--loop/--no-loop" for a flag pair
    help: str = ""
    type: str | None = None  # a bounded type of lorastrap.cli.params by name ("SEED", "CFG", ...)
    ints: tuple[int, int] | None = None  # an integer range
    floats: tuple[float, float, bool] | None = None  # a finite float range (lo, hi, lo open)
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    metavar: str | None = None
    envvar: str | None = None
    path: dict[str, Any] | None = None  # click.Path's checks, e.g. {"file_okay": False}
    show_default: bool = False
    invert: bool = False  # `--no-presets`: the flag sets the field False
    listing: str | None = None  # "floats" | "names": one comma-separated value on the command line
    record: bool = True  # part of the settings a run records


def option(default: Any, *decls: str, help: str = "", default_factory: Any = None, **spelling: Any) -> Any:
    """A dataclass field that is also a command-line option (see `Spelling`)."""
    meta = {"cli": Spelling(tuple(decls), help, **spelling)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def spelling(field: dataclasses.Field) -> Spelling | None:
    return field.metadata.get("cli")


def recorded(options: Any) -> dict[str, Any]:
    """The options a run records (JSON-able): every declared option but those with record=False."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        spell = spelling(field)
        if spell is None or not spell.record:
            continue
        value = getattr(options, field.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (tuple, list)):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[field.name] = value
    return out
