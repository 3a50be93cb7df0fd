"""`lorastrap export sprites` end to end: real workspace, real SQLite registry, files read back."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from game_export.synthetic import Figure, draw_frame, save_frame
from registry.models import Export


def _character(workspace, seed_images, cli_run) -> str:  # type: ignore[no-untyped-def]
    r = cli_run("character", "add", "Kitsune", *[a for p in seed_images for a in ("--image", str(p))],
                "--tags", "1girl, solo, fox ears", "--crop", "none")
    assert r.code == 0, r.err
    return "kitsune"


def _frames(folder: Path, views=("front", "from side", "from behind", "front")) -> list[Path]:
    paths = []
    for i, view in enumerate(views):
        image, _ = draw_frame((96, 128), Figure(x=20 + 4 * i, y=8, height=110, colour=(180, 60, 60)))
        paths.append(save_frame(image, folder / f"gen_{i}.png", view=view))
    return paths


def test_export_curated_frames_records_a_registry_row(workspace, seed_images, cli_run) -> None:
    slug = _character(workspace, seed_images, cli_run)
    curated = workspace.curated_dir(slug)
    _frames(curated)
    r = cli_run("export", "sprites", slug, "--engine", "godot4,unity", "--directions",
                "--mirror-side", "--godot-res", "res://chars/kitsune", "--no-progress", "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    out = Path(summary["out_dir"])
    assert out == workspace.exports_dir(slug) / "sprites"
    assert summary["animations"] == {"idle_down": 2, "idle_up": 1, "idle_side": 1, "idle_other_side": 1}
    assert (out / "godot4" / "kitsune.tres").is_file() and (out / "unity" / "kitsune.png.meta").is_file()
    assert any("mirrored" in w for w in summary["warnings"])
    with workspace.open_registry() as reg, reg.session() as s:
        rows = list(s.scalars(select(Export)))
    assert len(rows) == 1
    row = rows[0]
    assert row.engine == "godot4,unity" and row.frame_count == 5 and row.id == summary["export_id"]
    assert row.out_dir == f"characters/{slug}/exports/sprites"
    assert all((workspace.root / f).is_file() for f in row.files)
    frames = row.params["frames"]
    assert len(frames) == 5 and sum(f["mirrored"] for f in frames) == 1
    assert all(len(f["sha256"]) == 64 for f in frames)
    assert row.dataset_version_id is not None  # the character's current dataset version


def test_export_from_folder_with_globs_and_errors(workspace, seed_images, cli_run, tmp_path,  # type: ignore[no-untyped-def]
                                                  monkeypatch) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "no-models"))
    slug = _character(workspace, seed_images, cli_run)
    _frames(tmp_path / "walk")
    out = tmp_path / "game"
    r = cli_run("export", "sprites", slug, "--from", str(tmp_path / "walk"), "--animation", "walk=gen_*.png",
                "--engine", "json", "--out", str(out), "--pack", "tight", "--fps", "12", "--no-progress")
    assert r.code == 0, r.err
    data = json.loads((out / f"{slug}.json").read_text())
    assert list(data["animations"]) == ["walk"] and len(data["animations"]["walk"]) == 4
    tags = json.loads((out / f"{slug}.aseprite.json").read_text())["meta"]["frameTags"]
    assert [(t["name"], t["from"], t["to"]) for t in tags] == [("walk", 0, 3)]
    assert "exported 4 frames" in r.out

    bad = cli_run("export", "sprites", slug, "--animation", "run=nothing_*.png", "--no-progress")
    assert bad.code == 2 and "matches no image" in bad.err and bad.err.count("\n") == 1
    empty = cli_run("export", "sprites", slug, "--no-progress")  # curated/ is empty
    assert empty.code == 2 and "no images" in empty.err
    engine = cli_run("export", "sprites", slug, "--engine", "unreal", "--from", str(tmp_path / "walk"))
    assert engine.code == 2 and "unknown --engine" in engine.err
    model = cli_run("export", "sprites", slug, "--from", str(tmp_path / "walk"), "--remover", "rembg:isnet-anime")
    assert model.code == 2 and "isnet-anime.onnx" in model.err
    with workspace.open_registry() as reg, reg.session() as s:
        assert len(list(s.scalars(select(Export)))) == 1  # failed exports leave no row


def test_an_animated_frame_is_exported_as_its_first_frame_and_the_command_says_so(
        workspace, seed_images, cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    slug = _character(workspace, seed_images, cli_run)
    _frames(tmp_path / "walk")
    moves = [draw_frame((96, 128), Figure(x=20 + 8 * i, y=8, height=110, colour=(60, 60, 180)))[0] for i in range(2)]
    moves[0].save(tmp_path / "walk" / "gen_4.gif", save_all=True, append_images=moves[1:], duration=100)
    out = tmp_path / "game"
    r = cli_run("export", "sprites", slug, "--from", str(tmp_path / "walk"), "--animation", "walk=gen_*",
                "--engine", "json", "--out", str(out), "--no-progress")
    assert r.code == 0, r.err
    assert "exported 5 frames" in r.out
    assert "warning: gen_4.gif: animated (2 frames): only the first frame is used" in r.err.splitlines()
    data = json.loads((out / f"{slug}.json").read_text())
    assert len(data["animations"]["walk"]) == 5  # the animation counts as one frame, not two
