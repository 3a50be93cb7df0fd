"""The real Godot 3 engine loads `export sprites` output: `godot3-server` (Godot 3.2.3, Debian
package; .ci/run installs it) imports a project holding four exports, then `load()`s each .tres
and reports every frame — its texture, region, size and the opaque pixels it sees in the region.

Exports (one shared small character, 3 frames in 2 animations; one editor import for all):
- `res://hero.tres` with `--godot-res res://` (the project root; was `res:/hero.png` once),
- `res://rel/hero.tres` with paths relative to the .tres, tight packing (margins),
- `res://sprites/hero/hero.tres` with `--godot-res res://sprites/hero`, two pages,
- `res://all/godot3/hero.tres` from `--engine all --godot-res res://all` (the folder rule).
Godot 4 cannot run here; its text is checked against the engine's source in test_export_godot.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from game_export import ENGINES, ExportRequest, export_sprites

GODOT = shutil.which("godot3-server")
pytestmark = pytest.mark.skipif(GODOT is None, reason="godot3-server is not installed "
                                "(apt-get install godot3-server; .ci/run installs it)")
CHECK_SCRIPT = Path(__file__).parent / "engines" / "godot3_check.gd"

# res:// path of the .tres → (its export, the res:// folder its pages must be loaded from)
EXPORTS = {
    "res://hero.tres": dict(out="", godot_res="res://"),
    "res://rel/hero.tres": dict(out="rel", pack="tight", fps=12.0, loop=False),
    "res://sprites/hero/hero.tres": dict(out="sprites/hero", godot_res="res://sprites/hero",
                                         max_texture_size=80),
    "res://all/godot3/hero.tres": dict(out="all", godot_res="res://all", engines=frozenset(ENGINES)),
}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([GODOT, *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def godot_project(tmp_path_factory, engine_check_frames):
    """The project, the export results by .tres path, and what Godot saw (one import, one run)."""
    tmp = tmp_path_factory.mktemp("godot")
    specs = engine_check_frames
    project = tmp / "project"
    results = {}
    # The root export first: the project files are added after it, whatever it does to --out.
    for res_path, options in EXPORTS.items():
        options = dict(options)
        out = project / options.pop("out")
        engines = options.pop("engines", frozenset({"godot3"}))
        results[res_path] = export_sprites(ExportRequest(frames=specs, character="hero", out_dir=out,
                                                         engines=engines, **options))
        if res_path == "res://hero.tres":
            (project / "project.godot").write_text('config_version=4\n\n[application]\n\n'
                                                   'config/name="lorastrap check"\n')
    (project / "lorastrap_check.json").write_text(json.dumps(list(EXPORTS)))
    shutil.copy(CHECK_SCRIPT, project / "godot3_check.gd")
    # Godot writes its editor settings under XDG folders: keep them out of the user's home.
    env = {**os.environ, **{k: str(tmp / k.lower()) for k in
                            ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}}
    imported = _run(["--path", str(project), "--editor", "--quit"], env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    ran = _run(["--path", str(project), "-s", "godot3_check.gd"], env)
    lines = [line for line in ran.stdout.splitlines() if line.startswith("LORASTRAP_RESULT ")]
    assert lines, f"no result from Godot (rc {ran.returncode}): {ran.stdout[-1500:]} {ran.stderr[-1500:]}"
    seen = {r["path"]: r for r in json.loads(lines[0][len("LORASTRAP_RESULT "):])}
    return project, results, seen


def _res_to_file(project: Path, res_path: str) -> Path:
    assert res_path.startswith("res://")
    return project / res_path[len("res://"):]


@pytest.mark.parametrize("tres", list(EXPORTS))
def test_godot3_loads_every_frame_of_the_export(godot_project, tres):
    project, results, seen = godot_project
    result, loaded = results[tres], seen[tres]
    assert loaded["class"] == "SpriteFrames", f"Godot could not load {tres}"
    sheet = result.sheet
    frame_of = sheet.frame_index()
    # Godot lists animations sorted by name; frames in their order.
    assert [a["name"] for a in loaded["animations"]] == sorted(a.name for a in sheet.animations)
    folder = tres.rsplit("/", 1)[0]
    pages = [Image.open(_res_to_file(project, f"{folder}/{p.file}")) for p in sheet.pages]
    for anim in loaded["animations"]:
        ours = next(a for a in sheet.animations if a.name == anim["name"])
        assert anim["speed"] == ours.fps and anim["loop"] == ours.loop
        assert len(anim["frames"]) == len(ours.frames) > 0
        for name, frame in zip(ours.frames, anim["frames"]):
            want = frame_of[name]
            page = sheet.pages[want.page]
            assert frame["class"] == "AtlasTexture"
            # The texture Godot loaded is this frame's page, at the place the export put it.
            assert frame["atlas"] == f"{folder}/{page.file}"
            assert frame["atlas_size"] == [page.width, page.height]
            x, y, w, h = frame["region"]
            assert [x, y, w, h] == [want.x, want.y, want.w, want.h]
            assert 0 <= x and 0 <= y and x + w <= page.width and y + h <= page.height
            assert frame["size"] == [want.source_w, want.source_h]  # margin restores the cell
            assert frame["filter_clip"] is True
            alpha = np.asarray(pages[want.page].convert("RGBA"))[y:y + h, x:x + w, 3]
            assert frame["opaque"] == int((alpha > 127).sum()) > 0  # Godot sees our pixels


def test_the_four_exports_cover_the_path_forms(godot_project):
    project, results, _ = godot_project
    paths = {tres: (_res_to_file(project, tres).read_text().split('path="', 1)[1].split('"', 1)[0])
             for tres in EXPORTS}
    assert paths == {"res://hero.tres": "res://hero.png", "res://rel/hero.tres": "hero.png",
                     "res://sprites/hero/hero.tres": "res://sprites/hero/hero_0.png",
                     "res://all/godot3/hero.tres": "res://all/godot3/hero.png"}
    assert len(results["res://sprites/hero/hero.tres"].sheet.pages) == 2
    assert any(f.trimmed for f in results["res://rel/hero.tres"].sheet.frames)
