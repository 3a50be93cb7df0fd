"""CLI fuzz: every option of every command, fed values a user can type that are wrong.

The command tree is walked generically (commands merged later are covered without editing this
file); each option in turn gets bad values — negative, zero, NaN, inf, huge, empty, unicode, path
traversal, a folder where a file is expected, a file where a folder is expected, a line break —
while the other arguments are valid. Every run must end as a correct run (exit 0) or a refusal
(exit ≠ 0): never an escaping exception, a traceback or an "internal error". After a refusal the
workspace must be unchanged: every file byte for byte, and the registry row by row.

Deterministic: the values tried per option are drawn with a fixed seed (LORASTRAP_FUZZ_SEED to
vary it). The default run tries a few values per option and takes well under 60 s on 2 cores;
LORASTRAP_FUZZ=full tries every value (~30 s here); LORASTRAP_FUZZ_LOG=1 prints every run's
exit code and last line (with `pytest -s`).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from lorastrap.cli import cli, main
from lorastrap.cli.params import FiniteFloat

FULL = os.environ.get("LORASTRAP_FUZZ", "").lower() == "full"
SEED = int(os.environ.get("LORASTRAP_FUZZ_SEED", "14"))
PER_OPTION = 3  # values tried per option in the default run
BUDGET_S = 60.0

# Commands that run until stopped, or for minutes even on good input: not fuzzed here.
SKIP = {
    ("watch",): "watches until Ctrl-C (its options are bounded types, checked below)",
    ("worker",): "runs jobs until stopped",
    ("demo",): "the whole method end to end: minutes",
    ("lab", "pretrain"): "trains a model from scratch: minutes",
    ("lab", "eval"): "the fidelity benchmark: minutes",
    ("ui",): "serves a web UI until stopped",
}

NUMBER_VALUES = ["-1", "0", "nan", "inf", "-inf", "1e308", "99999999999999999999", "", "ünï", "1.5"]
TEXT_VALUES = ["", "   ", "ünïcødé 名前", "../../../escape", "a\nb", "x" * 5000, "-1", "nan", "kit,\n,kit"]
CHOICE_VALUES = ["", "bogus", "ünï"]


@dataclass
class Case:
    path: tuple[str, ...]
    argv: list[str]
    label: str


@dataclass
class Places:
    """Real paths the fuzz values point at (all inside tmp_path)."""

    image: Path
    folder: Path
    file: Path
    model: Path


def _leaves(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from _leaves(command, click.Context(command, parent=ctx, info_name=name), path)
        elif command is not None:
            yield path, command


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli, info_name="lorastrap")
    return sorted(_leaves(cli, ctx), key=lambda item: item[0])


def _valid(param: click.Parameter, places: Places) -> str:
    """A value that is right for `param` in the fuzz workspace (generic, by type and name)."""
    name = (param.name or "").lower()
    t = param.type
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, click.Path):
        if name in ("out", "out_dir", "report_out", "dest", "directory", "dir", "sheet"):
            return str(places.folder.parent / f"out-{name}")
        if t.file_okay and not t.dir_okay:
            return str(places.image)
        return str(places.image if t.file_okay else places.folder)
    if isinstance(t, (click.types.IntParamType, click.IntRange)):
        low = getattr(t, "min", None)
        return str(max(1, low if low is not None else 1))
    if isinstance(t, (click.types.FloatParamType, click.FloatRange)):
        low, high = getattr(t, "min", None), getattr(t, "max", None)
        return str(min(1.0, high) if high is not None else max(1.0, low or 1.0))
    return {"name": "kit", "character": "kit", "slug": "kit", "tags": "1girl, fox ears",
            "tag_text": "blue eyes", "kind": "sleep", "spec": str(places.model), "a": "v1",
            "b": "v1", "style_name": "nostyle", "revision": "head", "payload": "{}"}.get(name, "kit")


# Good argument values where the generic ones are wrong (a new character needs a new name).
ARGUMENTS = {("character", "add"): {"name": "mika"}}

# Cheap good values for commands whose correct runs would otherwise take long (generation,
# training): the fuzzed option replaces its own entry here.
CHEAP = {
    ("generate",): ["--views", "front", "--per-view", "1", "--steps", "1"],
    ("train",): ["--kind", "style", "--steps", "1"],
    ("clash", "run"): ["--views", "front", "--seeds", "1", "--steps", "1", "--no-presets"],
    ("clash", "fix"): ["--no-grid"],
    ("lab", "draw"): ["--count", "1"],
}


def _bad_values(param: click.Parameter, places: Places) -> list[str]:
    t = param.type
    if isinstance(t, click.Choice):
        return CHOICE_VALUES
    if isinstance(t, (click.types.IntParamType, click.IntRange, click.types.FloatParamType, click.FloatRange)):
        return NUMBER_VALUES
    if isinstance(t, click.Path):
        return ["", "ünï/nö.png", "../../escape/x", str(places.folder), str(places.file),
                str(places.folder / "missing" / "deeper")]
    return TEXT_VALUES


def _base_argv(path: tuple[str, ...], command: click.Command, places: Places) -> dict[str, list[str]]:
    """Option/argument name → argv pieces for a valid run (required ones, plus CHEAP)."""
    parts: dict[str, list[str]] = {}
    cheap = CHEAP.get(path, [])
    for i, token in enumerate(cheap):
        if token.startswith("--"):  # an option, with its value unless the next token is an option
            value = cheap[i + 1:i + 2]
            parts[token] = [token, *(v for v in value if not v.startswith("--"))]
    for param in command.params:
        if isinstance(param, click.Argument):
            if param.required:
                parts[param.name] = [ARGUMENTS.get(path, {}).get(param.name) or _valid(param, places)]
        elif param.required and param.opts[0] not in parts:
            parts[param.opts[0]] = [param.opts[0], _valid(param, places)]
    return parts


def _cases(places: Places) -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    for path, command in _commands():
        if path in SKIP:
            continue
        base = _base_argv(path, command, places)
        for param in command.params:
            if isinstance(param, click.Option) and (param.is_flag or param.name == "help"):
                continue
            values = _bad_values(param, places)
            chosen = values if FULL else rng.sample(values, min(PER_OPTION, len(values)))
            for value in chosen:
                parts = dict(base)
                if isinstance(param, click.Argument):
                    parts[param.name] = [value]
                else:
                    parts[param.opts[0]] = [param.opts[0], value]
                options = [p for k, v in parts.items() if k.startswith("-") for p in v]
                arguments = [v[0] for p in command.params if isinstance(p, click.Argument)
                             for k, v in parts.items() if k == p.name]
                label = f"{' '.join(path)} {param.opts[0] if isinstance(param, click.Option) else param.name}={value[:20]!r}"
                cases.append(Case(path, [*path, *options, "--", *arguments] if arguments else [*path, *options], label))
    return cases


def _registry_rows(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


def _state(root: Path, snapshot) -> tuple[dict[str, str], dict[str, list[tuple]]]:  # type: ignore[no-untyped-def]
    files = {k: v for k, v in snapshot(root).items() if not k.startswith(".lorastrap/registry.sqlite3")}
    return files, _registry_rows(root / ".lorastrap" / "registry.sqlite3")


def _run(argv: list[str]) -> tuple[int, str, str, BaseException | None]:
    out, err = io.StringIO(), io.StringIO()
    code, escaped = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            contextlib.ExitStack() as stack:
        stack.enter_context(_stdin(""))
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # noqa: BLE001 - anything escaping main is a finding
            escaped = exc
    return code, out.getvalue(), err.getvalue(), escaped


@contextlib.contextmanager
def _stdin(text: str):  # type: ignore[no-untyped-def]
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = old


@pytest.fixture
def fuzz_workspace(tmp_path, seed_image, tiny_model_dir, monkeypatch):  # type: ignore[no-untyped-def]
    """A workspace with one character, nested two folders deep so `../../x` stays in tmp_path."""
    from lorastrap.characters import add_character
    from lorastrap.workspace import init_workspace

    root = tmp_path / "a" / "b" / "ws"
    ws, _ = init_workspace(root, base_model=str(tiny_model_dir))
    cfg = root / "lorastrap.toml"
    cfg.write_text(cfg.read_text() + "\n[training]\nmax_train_steps = 2\nsample_steps = 1\nsave_every_steps = 0\n")
    add_character(ws, "kit", [seed_image], "1girl, fox ears")
    folder = tmp_path / "a" / "folder"
    folder.mkdir()
    (folder / "frame.png").write_bytes(seed_image.read_bytes())
    places = Places(image=seed_image, folder=folder, file=tmp_path / "a" / "file.txt", model=tiny_model_dir)
    places.file.write_text("not what was asked for\n")
    template = tmp_path / "template"
    shutil.copytree(root, template)
    monkeypatch.chdir(root)
    monkeypatch.delenv("LORASTRAP_WORKSPACE", raising=False)
    monkeypatch.setenv("LORASTRAP_PROGRESS", "off")
    return root, template, places


def test_every_option_of_every_command_refuses_bad_values_cleanly(fuzz_workspace, snapshot) -> None:  # type: ignore[no-untyped-def]
    root, template, places = fuzz_workspace
    clean = _state(root, snapshot)
    cases = _cases(places)
    assert len(cases) > 300, "the command tree walk found too few options"
    findings: list[str] = []
    refused = correct = 0
    t0 = time.monotonic()
    for case in cases:
        code, out, err, escaped = _run(case.argv)
        text = out + err
        if os.environ.get("LORASTRAP_FUZZ_LOG"):
            print(f"{code} {case.label} :: {(err.strip().splitlines() or [''])[-1][:150]}")
        if escaped is not None:
            findings.append(f"{case.label}: {escaped.__class__.__name__} escaped main: {escaped}")
        elif "Traceback (most recent call last)" in text or "internal error" in err:
            findings.append(f"{case.label}: exit {code}: {err.strip().splitlines()[-1] if err.strip() else text[-200:]}")
        state = _state(root, snapshot)
        if code != 0 and escaped is None:
            refused += 1
            if state != clean:
                files = sorted(set(state[0].items()) ^ set(clean[0].items()))
                tables = [t for t in clean[1] if state[1].get(t) != clean[1][t]]
                findings.append(f"{case.label}: refused (exit {code}) but changed the workspace: "
                                f"files {[f for f, _ in files][:4]} tables {tables}")
        else:
            correct += 1
        if state != clean:  # a correct run may change it: start the next case from the template
            shutil.rmtree(root)
            shutil.copytree(template, root)
            os.chdir(root)  # the old folder, the process's working directory, is gone
    took = time.monotonic() - t0
    print(f"fuzz: {len(cases)} runs, {refused} refused, {correct} correct, {took:.1f} s")
    assert not findings, f"{len(findings)} of {len(cases)} runs went wrong:\n" + "\n".join(findings[:40])
    assert refused > correct  # the values are bad: most runs must be refusals
    if not FULL:
        assert took < BUDGET_S, f"the default fuzz run took {took:.0f} s; keep it under {BUDGET_S:.0f} s"


def test_every_numeric_option_is_bounded_and_finite() -> None:
    """New commands must use lorastrap/cli/params.py (or another bounded type) for numbers."""
    unbounded = []
    for path, command in _commands():
        for param in command.params:
            t = param.type
            if isinstance(t, click.types.IntParamType) or isinstance(t, click.types.FloatParamType):
                ok = (isinstance(t, click.IntRange) and t.min is not None and t.max is not None) or \
                     (isinstance(t, FiniteFloat) and t.min is not None and t.max is not None)
                if not ok:
                    unbounded.append(f"{' '.join(path)} {param.opts[0] if param.opts else param.name}: {t!r}")
    assert not unbounded, "unbounded numeric options:\n" + "\n".join(unbounded)
