"""PixiJS 8 and Phaser 3/4 read the JSON exports with their own code, under node.

tests/engines/web_check.cjs runs PixiJS's `Spritesheet.parse` on each `<page>.json`, and Phaser's
real `TextureManager.addAtlas` (what `load.atlas` / `load.aseprite` call) on `<page>.json` and
`<page>.aseprite.json` plus `AnimationManager.createFromAseprite` on the latter, for Phaser 3
and Phaser 4. The npm packages (exact versions below) are installed once into a cache folder
outside the repository, ~/.cache/lorastrap-tests/node/<hash of the versions>; without node and
npm, or when npm cannot install them, the test is skipped with the reason.

Two small exports: `tight` (one page, trimmed frames: trim rectangles and offsets) and `grid`
(two pages, one animation each: multipack files).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from game_export import ExportRequest, export_sprites

PACKAGES = {"pixi.js": "8.22.0", "phaser": "4.2.1", "phaser3": "npm:phaser@3.90.0"}
CHECK_SCRIPT = Path(__file__).parent / "engines" / "web_check.cjs"
NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(NODE is None or NPM is None,
                                reason="node and npm are not installed (PixiJS/Phaser run under node)")


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lorastrap-tests" / "node"


def _install_packages() -> Path:
    """node_modules with PACKAGES, installed once per set of versions (a lock for parallel runs)."""
    key = hashlib.sha256(json.dumps(PACKAGES, sort_keys=True).encode()).hexdigest()[:16]
    root = _cache_root()
    done = root / key
    if (done / "installed.ok").is_file():
        return done
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        pytest.skip(f"no cache folder for the npm packages ({root}: {exc.strerror})")
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (done / "installed.ok").is_file():
            return done
        stage = root / f".{key}.{os.getpid()}.stage"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        (stage / "package.json").write_text(json.dumps(
            {"private": True, "name": "lorastrap-engine-checks", "dependencies": PACKAGES}))
        try:
            run = subprocess.run([NPM, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                                  "--no-package-lock", "--loglevel=error"], cwd=stage,
                                 capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            run = None
        if run is None or run.returncode != 0:
            shutil.rmtree(stage, ignore_errors=True)
            why = "timed out" if run is None else (run.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"npm could not install {', '.join(f'{k}@{v}' for k, v in PACKAGES.items())}: {why}")
        (stage / "installed.ok").write_text(json.dumps(PACKAGES))
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(done)
        os.replace(stage, done)
    return done


@pytest.fixture(scope="module")
def engines_saw(tmp_path_factory, engine_check_frames):
    """The two exports and what PixiJS and Phaser 3/4 made of every page JSON."""
    node_dir = _install_packages()
    tmp = tmp_path_factory.mktemp("web")
    specs = engine_check_frames
    exports = {
        "tight": export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp / "tight",
                                              engines=frozenset({"json"}), pack="tight", fps=10)),
        "grid": export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp / "grid",
                                             engines=frozenset({"json"}), max_texture_size=80)),
    }
    run = subprocess.run([NODE, str(CHECK_SCRIPT), str(node_dir), *(str(r.out_dir) for r in exports.values())],
                         capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stdout.splitlines() if line.startswith("LORASTRAP_RESULT ")]
    assert run.returncode == 0 and lines, f"node failed (rc {run.returncode}): {run.stderr[-2000:]}"
    return exports, json.loads(lines[0][len("LORASTRAP_RESULT "):])


def _page_json(page_file: str, aseprite: bool = False) -> str:
    return page_file.rsplit(".", 1)[0] + (".aseprite.json" if aseprite else ".json")


def test_the_engines_that_ran_are_the_pinned_ones(engines_saw):
    exports, seen = engines_saw
    assert seen["versions"] == {"pixi.js": "8.22.0", "phaser3": "3.90.0", "phaser": "4.2.1"}
    assert len(exports["grid"].sheet.pages) == 2 and len(exports["tight"].sheet.pages) == 1
    assert any(f.trimmed for f in exports["tight"].sheet.frames)


@pytest.mark.parametrize("export", ["tight", "grid"])
def test_pixi_spritesheet_gives_frames_anchors_and_animations(engines_saw, export):
    exports, seen = engines_saw
    sheet = exports[export].sheet
    for index, page in enumerate(sheet.pages):
        parsed = seen["pixi"][f"{export}/{_page_json(page.file)}"]
        frames = sheet.frames_on(index)
        assert parsed["resolution"] == 1 and set(parsed["textures"]) == {f.name for f in frames}
        for f in frames:
            t = parsed["textures"][f.name]
            assert t["frame"] == [f.x, f.y, f.w, f.h]
            assert 0 <= f.x and 0 <= f.y and f.x + f.w <= page.width and f.y + f.h <= page.height
            assert t["orig"] == [0, 0, f.source_w, f.source_h] and t["size"] == [f.source_w, f.source_h]
            assert t["trim"] == ([f.offset_x, f.offset_y, f.w, f.h] if f.trimmed else None)
            assert t["anchor"] == list(sheet.pivot)  # the bottom-centre pivot as Pixi's default anchor
        on_page = {a.name: [n for n in a.frames if n in parsed["textures"]] for a in sheet.animations}
        assert parsed["animations"] == {k: v for k, v in on_page.items() if v}
        assert parsed["animations"]  # every page holds some animation


@pytest.mark.parametrize("phaser", ["phaser3", "phaser"])
@pytest.mark.parametrize("export", ["tight", "grid"])
def test_phaser_atlas_frames_and_pivots(engines_saw, phaser, export):
    exports, seen = engines_saw
    sheet = exports[export].sheet
    for index, page in enumerate(sheet.pages):
        atlas = seen["phaser"][phaser][f"{export}/{_page_json(page.file)}"]
        assert atlas["source"] == [page.width, page.height]
        assert set(atlas["frames"]) == {f.name for f in sheet.frames_on(index)}
        for f in sheet.frames_on(index):
            got = atlas["frames"][f.name]
            assert got["cut"] == [f.x, f.y, f.w, f.h] and got["real"] == [f.source_w, f.source_h]
            assert got["trimmed"] == f.trimmed and got["spriteSource"] == [f.offset_x, f.offset_y]
            assert got["customPivot"] is True and got["pivot"] == list(sheet.pivot)


@pytest.mark.parametrize("phaser", ["phaser3", "phaser"])
@pytest.mark.parametrize("export", ["tight", "grid"])
def test_phaser_create_from_aseprite_builds_every_animation(engines_saw, phaser, export):
    exports, seen = engines_saw
    sheet = exports[export].sheet
    frame_of = sheet.frame_index()
    built: dict[str, list[str]] = {}
    for page in sheet.pages:
        key = f"{export}/{_page_json(page.file, aseprite=True)}"
        loaded = seen["phaser"][phaser][key]
        for anim in loaded["animations"]:
            ours = next(a for a in sheet.animations if a.name == anim["key"])
            assert anim["frameRate"] == pytest.approx(ours.fps, rel=0.01)
            names = []
            for f in anim["frames"]:
                assert f["texture"] == key and f["duration"] == round(1000 / ours.fps)
                region = loaded["frames"][f["frame"]]["cut"]  # the atlas frame Phaser will draw
                name = next(n for n in ours.frames if [frame_of[n].x, frame_of[n].y, frame_of[n].w,
                                                        frame_of[n].h] == region and frame_of[n].page ==
                            sheet.pages.index(page))
                names.append(name)
            built[anim["key"]] = names
    # Every animation, with all its frames in order (none with 0 frames, as frames keyed by name gave).
    assert built == {a.name: list(a.frames) for a in sheet.animations}
