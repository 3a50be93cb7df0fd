"""Bounded click parameter types: every number a user can type has a range, floats are finite.

One place for the limits, so that `--steps 0`, `--cfg nan`, `--weight inf` or `--size 100000`
are refused by the parser with click's one-line usage error (exit 2) before anything runs, and
so that `tests/test_cli_fuzz.py` can check that no numeric option of any command is unbounded.
Limits are generous: they stop nonsense and sizes no machine holds, not unusual but real values.
"""

from __future__ import annotations

import math
from typing import Any

import click

from lorastrap.naming import control_character

# Seeds: torch takes 64-bit seeds, numpy (used by some samplers) only 32-bit ones.
MAX_SEED = 2**32 - 1
MAX_ID = 2**31 - 1


class FiniteFloat(click.FloatRange):
    """A float within [min, max] (open ends as asked); NaN and ±inf are refused."""

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def floats(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> FiniteFloat:
    return FiniteFloat(lo, hi, min_open=lo_open, max_open=hi_open)


def ints(lo: int, hi: int) -> click.IntRange:
    return click.IntRange(lo, hi)


class LineText(click.ParamType):
    """One line of text: no newlines or other control characters, at most `max_len` characters.

    A newline in a prompt breaks the A1111 `parameters` text (its lines are fields); one in a name
    breaks every table that prints it.
    """

    name = "text"

    def __init__(self, max_len: int = 1000, allow_empty: bool = True) -> None:
        self.max_len, self.allow_empty = max_len, allow_empty

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        bad = control_character(text)
        if bad is not None:
            self.fail(f"contains the control character {bad!r}; give one line of plain text", param, ctx)
        if len(text) > self.max_len:
            self.fail(f"is {len(text)} characters long; at most {self.max_len}", param, ctx)
        if not self.allow_empty and not text.strip():
            self.fail("is empty", param, ctx)
        return text


# -- the shared ranges --------------------------------------------------------------------------
SEED = ints(0, MAX_SEED)
ID = ints(1, MAX_ID)
SAMPLING_STEPS = ints(1, 1000)
CFG = floats(0.0, 50.0)
LORA_WEIGHT = floats(-10.0, 10.0)
IMAGES_PER_VIEW = ints(1, 1000)
TRAIN_STEPS = ints(1, 10_000_000)
RANK = ints(1, 1024)
ALPHA = floats(0.0, 4096.0, lo_open=True)
LEARNING_RATE = floats(0.0, 1.0, lo_open=True)
BATCH_SIZE = ints(1, 4096)
RESOLUTION = ints(8, 8192)
FRACTION = floats(0.0, 1.0)
STRENGTH = floats(0.0, 1.0, lo_open=True, hi_open=True)  # img2img denoising strength
NAME = LineText(max_len=200, allow_empty=False)
TEXT = LineText(max_len=4000)
