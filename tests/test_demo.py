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
    assert "lorastrap status kitsune" in result.out
    slug_dir = root / "characters" / "kitsune"
    for round_dir in ("r1", "r2"):
        sheet = slug_dir / "candidates" / round_dir / "contact-sheet.png"
        assert Image.open(sheet).size[0] > 64
    loras = sorted(p.name for p in (slug_dir / "loras").glob("*.safetensors"))
    assert loras == ["kitsune-character.safetensors", "kitsune-style-r1.safetensors", "kitsune-style-r2.safetensors"]
    sprites = slug_dir / "exports" / "sprites"
    assert list(sprites.rglob("*.tres")) and list(sprites.rglob("*.png.meta"))
    frames = json.loads(next(sprites.rglob("*.json")).read_text())["frames"]
    assert len(frames) == 10  # 5 lab views × 2 seeds, background removed, packed
    cli_run("-w", str(root), "status", "kitsune", "--json")
    status = json.loads(cli_run("-w", str(root), "status", "kitsune", "--json").out)
    assert status[0]["stage"] == "character_trained"
