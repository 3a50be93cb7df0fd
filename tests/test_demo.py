"""`lorastrap demo --small`: the whole method on the shipped lab model, as CI runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_small_demo_runs_the_method_and_exports_sprites(tmp_path: Path, cli_run) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "demo"
    result = cli_run("demo", "--small", "--dir", str(root))
    assert result.code == 0, result.err
    assert "lorastrap status neko" in result.out  # red-cat-notail-green, a cat
    assert f"lorastrap -w {root} ui --open" in result.out.splitlines()[-1]  # ends with the way to see it
    # the closing fidelity table: one row per LoRA of the method, cells parse as accuracies
    table = [line for line in result.out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| arm | from front | from side | from behind")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[1:]}
    # the seed LoRA (b) — what the method must beat — and the lab-only reference are rows too
    assert {"lab-only reference: base model, tags spelled out", "(b) seed LoRA, trigger only",
            "style r1, trigger + tags", "style r2, trigger + tags", "character LoRA, trigger only"} <= set(rows)
    cells = [c.strip() for c in rows["character LoRA, trigger only"].strip("|").split("|")[1:]]
    assert all(0.0 <= float(c.split()[0]) <= 1.0 for c in cells)
    slug_dir = root / "characters" / "neko"
    for round_dir in ("r1", "r2"):
        sheet = slug_dir / "candidates" / round_dir / "contact-sheet.png"
        assert Image.open(sheet).size[0] > 64
    loras = sorted(p.name for p in (slug_dir / "loras").glob("*.safetensors"))
    assert loras == ["neko-character.safetensors", "neko-style-r1.safetensors", "neko-style-r2.safetensors"]
    sprites = slug_dir / "exports" / "sprites"
    assert list(sprites.rglob("*.tres")) and list(sprites.rglob("*.png.meta"))
    frames = json.loads(next(sprites.rglob("*.json")).read_text())["frames"]
    assert len(frames) == 10  # 5 lab views × 2 seeds, background removed, packed
    status = json.loads(cli_run("-w", str(root), "status", "neko", "--json").out)[0]
    assert status["stage"] == "character_trained"
    # the assist's judge ranked every round (verdicts cached beside the candidates) ...
    for round_dir in ("r1", "r2"):
        verdicts = json.loads((slug_dir / "candidates" / round_dir / "assist.json").read_text())["candidates"]
        assert verdicts and all("margins" in v and "passed" in v for v in verdicts.values())
        # refereed by round 1's LoRA (the seed images alone), not by what later rounds kept
        assert {v["judge"] for v in verdicts.values()} == {"neko-style-r1.safetensors"}
    # ... status knows each view's yield without the lab's reader, and which LoRA to use
    assert sum(y["generated"] for y in status["candidate_yield"].values()) >= 8
    assert status["recommended"]["kind"] in ("style", "character") and status["recommended"]["prompt"]
    text = cli_run("-w", str(root), "status", "neko").out
    assert "candidates kept / generated" in text and "check: prefers" in text
    assert "the check prefers it" in cli_run("-w", str(root), "lineage", "neko").out


def test_demo_refuses_a_character_outside_the_held_out_set_before_any_work(tmp_path: Path, cli_run) -> None:  # type: ignore[no-untyped-def]
    result = cli_run("demo", "--small", "--dir", str(tmp_path / "demo"), "--character", "nobody")
    assert result.code != 0 and "held-out" in result.err and "red-cat-notail-green" in result.err
    assert not (tmp_path / "demo").exists()
