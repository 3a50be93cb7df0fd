"""A command family's options dataclass (lorastrap.kernel.options) as click options, and back.

`@dataclass_options(SpriteOptions)` adds one click option per declared field, in field order;
`from_options(SpriteOptions, kwargs)` takes those values out of the command's keyword arguments
and builds the dataclass the library call takes. Adding an option is adding a field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lorastrap.cli import params
from lorastrap.cli.common import parse_floats
from lorastrap.kernel.options import Spelling, spelling

T = TypeVar("T")


def _declared(cls: type) -> list[tuple[dataclasses.Field, Spelling]]:
    return [(f, s) for f in dataclasses.fields(cls) if (s := spelling(f)) is not None]


def _shown(default: Any, spell: Spelling) -> Any:
    """The default as the command line writes it."""
    if spell.listing and isinstance(default, (tuple, list)):
        return ",".join(str(v) for v in default)
    return default


def _type(spell: Spelling) -> Any:
    if spell.type:
        return getattr(params, spell.type)
    if spell.ints:
        return params.ints(*spell.ints)
    if spell.floats:
        lo, hi, lo_open = spell.floats
        return params.floats(lo, hi, lo_open=lo_open)
    if spell.choices:
        return click.Choice(list(spell.choices))
    if spell.path is not None:
        return click.Path(path_type=Path, **spell.path)
    return None


def _click_option(field: dataclasses.Field, spell: Spelling) -> Callable[[Any], Any]:
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    kwargs: dict[str, Any] = {"help": spell.help or None}
    if isinstance(default, bool) and not spell.listing:
        if spell.invert:  # `--no-presets` stores False in `presets`
            kwargs.update(is_flag=True, flag_value=False, default=True)
        elif "/" in spell.decls[0]:
            kwargs.update(default=default, show_default=spell.show_default)
        else:
            kwargs.update(is_flag=True, default=default)
    else:
        kwargs.update(default=_shown(default, spell), show_default=spell.show_default,
                      multiple=spell.multiple, metavar=spell.metavar, envvar=spell.envvar)
        if (kind := _type(spell)) is not None:
            kwargs["type"] = kind
    return click.option(*spell.decls, field.name, **{k: v for k, v in kwargs.items() if v is not None})


def dataclass_options(cls: type, *, exclude: tuple[str, ...] = ()) -> Callable[[Any], Any]:
    """Decorate a click command with one option per declared field of `cls` (but `exclude`)."""
    def decorate(func: Any) -> Any:
        for field, spell in reversed(_declared(cls)):
            if field.name not in exclude:
                func = _click_option(field, spell)(func)
        return func
    return decorate


def _value(value: Any, spell: Spelling) -> Any:
    if spell.listing == "floats":
        return tuple(parse_floats(value, spell.decls[0]))
    if spell.listing == "names":
        names = [v.strip() for v in (value or "").split(",") if v.strip()]
        return names or None
    if spell.multiple:
        return tuple(value)
    return value


def from_options(cls: type[T], kwargs: dict[str, Any], **extra: Any) -> T:
    """`cls` from the command's keyword arguments: the declared fields' values are taken out of
    `kwargs` (what remains is the command's own); `extra` sets the other fields."""
    values = {f.name: _value(kwargs.pop(f.name), s) for f, s in _declared(cls) if f.name in kwargs}
    return cls(**values, **extra)
