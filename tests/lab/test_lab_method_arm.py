"""Arm (c)'s simulated careful curator, the rounds' yield, and what `status` knows of it."""

from __future__ import annotations

import json
from pathlib import Path

from lorastrap.kernel.pngmeta import write_png
from lorastrap.lab.eval_parallel import merge_results
from lorastrap.lab.eval_yield import yield_summary, yield_table
from lorastrap.lab.method_arm import careful_curator, parse_levers, round_yield
from lorastrap.lab.world import HELD_OUT, Character, draw
from lorastrap.method.yields import candidate_yield

C = HELD_OUT[1]  # red-cat-notail-green
SWAPPED = Character("green hair", C.ears, C.tail, "red dress")


def _candidate(ws, round_no: int, who: Character, view: str, seed: int) -> Path:  # type: ignore[no-untyped-def]
    path = ws.candidates_dir("kit", round_no) / f"{view.replace(' ', '-')}-{seed}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_png(path, draw(who, view, "flat color", seed), "p", {"view": view})


def test_the_careful_curator_keeps_right_candidates_first_and_fills_up_with_the_least_wrong(workspace) -> None:  # type: ignore[no-untyped-def]
    right = [_candidate(workspace, 1, C, "from side", 1), _candidate(workspace, 1, C, "from behind", 2)]
    swapped = _candidate(workspace, 1, SWAPPED, "from side", 3)  # hair and dress wrong
    wrong_view = workspace.candidates_dir("kit", 1) / "from-above-4.png"  # asked above, drawn from side
    write_png(wrong_view, draw(C, "from side", "flat color", 4), "p", {"view": "from above"})
    kept = careful_curator(C)(workspace, "kit", 1, 3, {"from front": 4})
    assert sorted(p.name for p in kept) == sorted([right[0].name, right[1].name, wrong_view.name])
    assert swapped.name not in {p.name for p in kept}  # 4 of 5 attributes right beats 3 of 5
    assert careful_curator(C)(workspace, "kit", 1, 1, {}) == [workspace.curated_dir("kit") / swapped.name]

    rows = round_yield(workspace, "kit", C, {1: 4})
    assert rows == [{"round": 1, "needed": 4, "views": {
        "from above": {"generated": 1, "right": 0, "kept": 1, "kept_right": 0},
        "from behind": {"generated": 1, "right": 1, "kept": 1, "kept_right": 1},
        "from side": {"generated": 2, "right": 1, "kept": 2, "kept_right": 1}}}]
    # what the product knows without the reader: generated and kept per view
    product = candidate_yield(workspace, "kit")[1]
    assert {v: (y.generated, y.kept, y.passed) for v, y in product.items()} == {
        "from above": (1, 1, None), "from behind": (1, 1, None), "from side": (2, 2, None)}


def test_yield_table_and_merge() -> None:
    def rows(right: int) -> list[dict]:
        return [{"round": 1, "needed": 6, "views": {"from side": {"generated": 4, "right": right, "kept": 3,
                                                                    "kept_right": min(3, right)}}}]

    one = {"views": ["from side"], "characters": ["a"], "arms": {}, "seconds": 1.0, "config": {},
           "yield": {"a": rows(4)}}
    two = {**one, "characters": ["b"], "yield": {"b": rows(1)}}
    merged, tables = merge_results([one, two])
    assert merged["yield"] == {"a": rows(4), "b": rows(1)}
    summary = yield_summary(merged["yield"])["1"]
    assert summary["right"] == [1.0, 0.25] and summary["kept_right"] == 4 and summary["kept"] == 6
    table = yield_table(merged["yield"])
    assert "| 1 | 0.62 ± 0.53 | 0.62 ± 0.53 | 6.0 | 4/6 |" in table and table in tables
    assert "a 4/4, b 1/4" in table


def test_levers_parse_as_toml_values() -> None:
    boot, train = parse_levers(["bootstrap.candidate_weight=0.8", "bootstrap.thresholds=[4, 16, 40]",
                                "training.character.max_train_steps=400", "training.rank=4"])
    assert boot == {"candidate_weight": 0.8, "thresholds": [4, 16, 40]}
    assert train == {"character": {"max_train_steps": 400}, "rank": 4}
    import pytest

    from lorastrap.kernel.errors import UserError
    for bad in ("candidate_weight=0.8", "bootstrap.a.b=1", "training.other.x=1", "bootstrap.x"):
        with pytest.raises(UserError):
            parse_levers([bad])


def test_status_counts_the_assists_verdicts(workspace) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.method.step import record_checks

    a = _candidate(workspace, 2, C, "from side", 1)
    _candidate(workspace, 2, C, "from side", 2)
    record_checks(workspace.candidates_dir("kit", 2), {a.name: True, "from-side-2.png": False})
    assert json.loads((a.parent / "assist.json").read_text())["candidates"][a.name] == {"passed": True}
    y = candidate_yield(workspace, "kit")[2]["from side"]
    assert (y.generated, y.passed, y.kept) == (2, 1, 0)
