"""Arm (c) of the fidelity benchmark: the whole method on a held-out lab character, in a workspace
of its own, with settings that can be varied (the levers), a curator, and the yield of every round.

Curators:
- `assist`: the product's own curation assist decides what is kept (`--auto-curate`), as a user
  who trusts it would;
- `careful`: a SIMULATION that exists only inside this benchmark. The lab's reader plays a careful
  person: it keeps the candidates whose identity and view are right, and only when a round has too
  few right ones the least wrong of the rest (the threshold must be reached). The product never
  uses the reader; this arm separates "the method" from "the assist".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorastrap.method.auto import Curate
from lorastrap.workspace import CONFIG_NAME, Workspace, init_workspace, load_workspace

CURATORS = ("assist", "careful")
# what the lab's seed drawings show besides the character: kept in captions, so the trigger learns
# the character and not "seen from the front"; the style is carried into candidate prompts
SEED_TAGS = "from front, flat color"


@dataclass
class MethodSettings:
    """The method's settings in the lab (the demo's full size) and the levers a run may change.

    `bootstrap` and `training` are written into the workspace's lorastrap.toml as they would be by
    a user: any [bootstrap] key; shared [training] keys and [training.style] / [training.character]
    tables (a nested dict)."""
    thresholds: tuple[int, ...] = (4, 10, 16)
    candidates: int = 12
    style_steps: int = 120
    character_steps: int = 300
    sample_steps: int = 20
    curator: str = "assist"
    bootstrap: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.curator not in CURATORS:
            raise ValueError(f"unknown curator {self.curator!r}; choose one of {', '.join(CURATORS)}")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(name: str, values: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, Mapping)]
    for k, v in values.items():
        if isinstance(v, Mapping):
            lines += ["", *_toml_table(f"{name}.{k}", v)]
    return lines


def settings_toml(base_model: str, settings: MethodSettings, views: Sequence[str]) -> str:
    """A complete lorastrap.toml for a lab workspace: the lab's views, the lab's LoRA recipe
    (rank 8, lr 1e-3, batch 4: a small model learns fast) at 64 px, and the run's levers."""
    bootstrap = {"thresholds": list(settings.thresholds), "candidates_per_round": settings.candidates,
                 "views": list(views), **settings.bootstrap}
    levers = dict(settings.training)
    style = {"max_train_steps": settings.style_steps, **levers.pop("style", {})}
    character = {"max_train_steps": settings.character_steps, **levers.pop("character", {})}
    training = {"resolution": 64, "sample_steps": settings.sample_steps, "rank": 8, "alpha": 8.0,
                "learning_rate": 1e-3, "batch_size": 4, **levers, "style": style, "character": character}
    lines = ["# a lab workspace: the lab world's views, short training runs at the lab's 64 px", "",
             *_toml_table("workspace", {"base_model": base_model}), "",
             *_toml_table("bootstrap", bootstrap), "", *_toml_table("training", training)]
    return "\n".join(lines) + "\n"


def write_settings(ws: Workspace, settings: MethodSettings, views: Sequence[str]) -> Workspace:
    base = ws.config.workspace.base_model
    (ws.root / CONFIG_NAME).write_text(settings_toml(base, settings, views), encoding="utf-8")
    return load_workspace(ws.root)


def careful_curator(character) -> Curate:  # type: ignore[no-untyped-def]
    """SIMULATION (benchmark only): the lab's reader plays a careful person curating `character`."""
    from lorastrap.images import curated_files
    from lorastrap.method.assist import RankedCandidate, keep_files, pick_spread
    from lorastrap.method.yields import round_candidates

    def curate(ws: Workspace, slug: str, round_no: int, n: int, coverage: Mapping[str, int]) -> list[Path]:
        kept = {p.name for p in curated_files(ws.curated_dir(slug))[0]}
        right, wrong = [], []
        for path in round_candidates(ws.candidates_dir(slug, round_no)):
            if path.name in kept:
                continue
            ok, view = read_candidate(path, character)
            ranked = RankedCandidate(path, view, sum(ok.values()) / len(ok))
            (right if all(ok.values()) else wrong).append(ranked)
        wrong.sort(key=lambda r: -r.score)  # the least wrong first
        picked = pick_spread(right, n, coverage)
        picked += pick_spread(wrong, n - len(picked), coverage)
        return keep_files(ws, slug, [r.path for r in picked])

    return curate


def reader_check(character):  # type: ignore[no-untyped-def]
    """SIMULATION (benchmark only): the careful person's eye in adaptive rounds — a candidate
    passes when the reader finds its identity and view right."""

    def check(paths: Sequence[Path]) -> list[bool]:
        return [all(read_candidate(p, character)[0].values()) for p in paths]

    return check


def read_candidate(path: Path, character) -> tuple[dict[str, bool], str]:  # type: ignore[no-untyped-def]
    """Which attributes of a candidate the reader finds as asked (identity + the asked view)."""
    from PIL import Image

    from lorastrap.kernel.pngmeta import png_view
    from lorastrap.lab.reader import read

    view = png_view(path) or "front"
    with Image.open(path) as im:
        got = read(im.convert("RGB")).attrs
    truth = {**character.attrs(), "view": view}
    return {a: got[a] == v for a, v in truth.items()}, view


def round_yield(ws: Workspace, slug: str, character, needs: Mapping[int, int]) -> list[dict]:  # type: ignore[no-untyped-def]
    """Per round and view (lab only: the reader is the truth): candidates generated, right
    (identity and view), kept, kept and right; and how many images the round needed."""
    from lorastrap.images import curated_files
    from lorastrap.method.yields import round_candidates, round_numbers

    kept = {p.name for p in curated_files(ws.curated_dir(slug))[0]}
    rows = []
    for round_no in round_numbers(ws, slug):
        folder = ws.candidates_dir(slug, round_no)
        per_view: dict[str, dict[str, int]] = {}
        for path in round_candidates(folder) + round_candidates(folder / ".rejected"):
            ok, view = read_candidate(path, character)
            row = per_view.setdefault(view, {"generated": 0, "right": 0, "kept": 0, "kept_right": 0})
            good = all(ok.values())
            row["generated"] += 1
            row["right"] += good
            row["kept"] += path.name in kept
            row["kept_right"] += good and path.name in kept
        rows.append({"round": round_no, "needed": needs.get(round_no, 0), "views": per_view})
    return rows


@dataclass
class MethodRun:
    """What arm (c) returns: each round's LoRA and the final one, and the rounds' yield."""
    loras: list[tuple[str, Path]]
    rounds: list[dict] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.loras)


@dataclass
class LabMethodArm:
    """A picklable bootstrap hook for `run_fidelity` (spawned `--jobs` processes get a copy)."""
    settings: MethodSettings = field(default_factory=MethodSettings)

    def __call__(self, character, seed_paths: Sequence[Path], trigger: str, work_dir: Path) -> MethodRun:  # type: ignore[no-untyped-def]
        from lorastrap.characters import add_character
        from lorastrap.lab.demo_table import method_loras
        from lorastrap.lab.world import LEADING_TAGS, VIEWS
        from lorastrap.method.auto import run_method

        ws, _ = init_workspace(work_dir, base_model="lab")
        ws = write_settings(ws, self.settings, list(VIEWS))
        added = add_character(ws, character.slug, list(seed_paths), [*LEADING_TAGS, *character.tags()],
                              trigger=trigger, crop="none", seed_tags=SEED_TAGS)
        careful = self.settings.curator == "careful"
        curate = careful_curator(character) if careful else None
        # the careful person also decides which views need more candidates (adaptive rounds)
        check = reader_check(character) if careful and ws.config.bootstrap.adaptive else None
        needs: dict[int, int] = {}
        run_method(ws, added.slug, curate=curate, needs=needs, check=check)
        return MethodRun(method_loras(ws, added.slug), round_yield(ws, added.slug, character, needs))


def parse_levers(items: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`bootstrap.KEY=VALUE` / `training[.style|.character].KEY=VALUE` (VALUE in TOML: 0.8,
    [4, 16, 40], "text", true) → (bootstrap settings, training settings)."""
    import tomllib

    from lorastrap.kernel.errors import UserError

    bootstrap: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"] if sep else None
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word: a string
        if not sep or value is None or len(parts) < 2 or parts[0] not in ("bootstrap", "training") \
                or (parts[0] == "bootstrap" and len(parts) != 2) or len(parts) > 3 \
                or (len(parts) == 3 and parts[1] not in ("style", "character")):
            raise UserError(f"{item!r}: expected bootstrap.KEY=VALUE or training[.style|.character].KEY=VALUE")
        if parts[0] == "bootstrap":
            bootstrap[parts[1]] = value
        elif len(parts) == 2:
            training[parts[1]] = value
        else:
            training.setdefault(parts[1], {})[parts[2]] = value
    return bootstrap, training


def check_settings(settings: MethodSettings, views: Sequence[str]) -> None:
    """Fail before any work when a lever names an unknown setting or a bad value (UserError)."""
    import tomllib

    from lorastrap.config import Config
    from lorastrap.training.config import PRESETS, TrainConfig

    config = Config.from_dict(tomllib.loads(settings_toml("lab", settings, views)), "--set")
    shared = {k: v for k, v in config.training.items() if k not in PRESETS}
    for kind in PRESETS:
        TrainConfig.from_preset(kind).with_overrides(shared).with_overrides(config.training.get(kind, {}))
