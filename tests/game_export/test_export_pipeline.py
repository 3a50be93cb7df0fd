"""End-to-end export: frame selection, direction rows, mirroring flags, errors, atomic output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from game_export import (
    ENGINES,
    ExportError,
    ExportRequest,
    FrameSpec,
    export_sprites,
    frames_from_folder,
    frames_from_globs,
)
from game_export.directions import view_to_direction
from game_export.frames import natural_sorted, parse_animation_option
from game_export.synthetic import Figure, draw_frame, save_frame
from lorastrap.kernel.pngmeta import png_view


def _frame(path, view=None, height=100, x=20):
    image, _ = draw_frame((80, 120), Figure(x=x, y=10, height=height))
    return save_frame(image, path, view=view)


def test_globs_select_animations_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        _frame(tmp_path / f"walk_{i}.png")
    _frame(tmp_path / "idle.png")
    frames = frames_from_globs([("walk", "walk_*.png"), ("idle", "idle*.png")], base=tmp_path)
    assert [f.path.name for f in frames] == ["walk_1.png", "walk_2.png", "walk_10.png", "idle.png"]
    assert [f.animation for f in frames] == ["walk"] * 3 + ["idle"]
    assert natural_sorted([tmp_path / "a10", tmp_path / "a9"])[0].name == "a9"
    assert parse_animation_option("run=frames/run_*.png") == ("run", "frames/run_*.png")
    with pytest.raises(ExportError, match="NAME=GLOB"):
        parse_animation_option("run")
    with pytest.raises(ExportError, match="matches no image"):
        frames_from_globs({"jump": "jump_*.png"}, base=tmp_path)


def test_view_tags_become_direction_rows_and_mirrors_are_flagged(tmp_path):
    views = ["front", "from side", "from behind", "from side", "front"]
    for i, view in enumerate(views):
        _frame(tmp_path / "src" / f"g{i}.png", view=view, x=10 + 4 * i)
    frames = frames_from_folder(tmp_path / "src", "walk")
    assert png_view(frames[1].path) == "from side"
    base = dict(frames=frames, character="hero", engines=frozenset(ENGINES), directions=True)
    plain = export_sprites(ExportRequest(out_dir=tmp_path / "plain", **base))
    assert [a.name for a in plain.sheet.animations] == ["walk_down", "walk_up", "walk_side"]
    assert not any(f.mirrored for f in plain.sheet.frames)  # mirroring is off by default

    mirrored = export_sprites(ExportRequest(out_dir=tmp_path / "mirror", mirror_side=True, **base))
    anims = {a.name: a.frames for a in mirrored.sheet.animations}
    assert list(anims) == ["walk_down", "walk_up", "walk_side", "walk_other_side"]
    assert [len(v) for v in anims.values()] == [2, 1, 2, 2]
    flagged = sorted(f.name for f in mirrored.sheet.frames if f.mirrored)
    assert flagged == sorted(anims["walk_other_side"])
    assert any("mirrored" in w for w in mirrored.warnings)
    # The flag reaches the files people open.
    tp = json.loads((tmp_path / "mirror" / "json" / "hero.json").read_text())
    assert sorted(tp["meta"]["lorastrap"]["mirrored"]) == flagged
    meta = yaml.safe_load((tmp_path / "mirror" / "unity" / "hero.png.meta").read_text())
    assert all(name in meta["TextureImporter"]["userData"] for name in flagged)
    manifest = json.loads(mirrored.manifest.read_text())
    assert sorted(f["name"] for f in manifest["frames"] if f["mirrored"]) == flagged
    # A mirrored frame really is the side frame flipped.
    page = np.asarray(Image.open(tmp_path / "mirror" / "json" / "hero.png"))
    frames_by_name = mirrored.sheet.frame_index()
    side = frames_by_name[anims["walk_side"][0]]
    other = frames_by_name[anims["walk_other_side"][0]]
    def sprite_alpha(f):
        alpha = page[f.y:f.y + f.h, f.x:f.x + f.w, 3] > 0
        ys, xs = np.nonzero(alpha)
        return alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]

    assert np.array_equal(sprite_alpha(side)[:, ::-1], sprite_alpha(other))


def test_view_vocabulary():
    assert view_to_direction("from behind") == "up"
    assert view_to_direction("from side") == "side"
    assert view_to_direction("from above") == "down"
    assert view_to_direction("front") == "down"
    assert view_to_direction("dynamic pose") is None
    assert view_to_direction("simple background") is None  # not "back"
    assert view_to_direction("from_behind, looking back") == "up"


def test_outputs_per_engine_and_records(tmp_path):
    frames = [FrameSpec(_frame(tmp_path / f"f{i}.png"), "idle") for i in range(3)]
    result = export_sprites(ExportRequest(frames=frames, character="Hero Girl",
                                          out_dir=tmp_path / "out", engines=frozenset(ENGINES)))
    names = {p.relative_to(tmp_path / "out").as_posix() for p in result.files}
    assert {"godot4/Hero_Girl.tres", "godot3/Hero_Girl.tres", "unity/Hero_Girl.png.meta",
            "json/Hero_Girl.json", "Hero_Girl_preview.png", "Hero_Girl_export.json"} <= names
    assert all(p.is_file() for p in result.files)
    assert result.remover == "flood" and result.remover_loads == 0
    records = result.frame_records()
    assert [r["source"] for r in records] == [str(f.path) for f in frames]
    preview = Image.open(result.preview)
    assert preview.width > 3 * 64
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the staging folder is gone


def test_reexport_is_byte_identical(tmp_path):
    frames = [FrameSpec(_frame(tmp_path / f"f{i}.png"), "idle") for i in range(2)]
    request = dict(frames=frames, character="hero", engines=frozenset(ENGINES))
    a = export_sprites(ExportRequest(out_dir=tmp_path / "a", **request))
    first = {p: p.read_bytes() for p in a.files}
    again = export_sprites(ExportRequest(out_dir=tmp_path / "a", **request))  # into the same folder
    assert again.files == a.files and all(p.read_bytes() == first[p] for p in again.files)
    b = export_sprites(ExportRequest(out_dir=tmp_path / "b", **request))
    for fa, fb in zip(a.files, b.files):
        if fa.name.endswith(".meta"):  # another place: another Unity GUID (and sprite ids)
            assert fa.read_bytes() != fb.read_bytes()
        elif not fa.name.endswith("_export.json"):  # the manifest names its folder
            assert fa.read_bytes() == fb.read_bytes(), fa.name


def test_errors_are_one_line_and_leave_nothing(tmp_path):
    good = FrameSpec(_frame(tmp_path / "good.png"), "idle")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    cases = [
        (ExportRequest(frames=[good, FrameSpec(broken)], character="h", out_dir=out), "cannot read frame"),
        (ExportRequest(frames=[], character="h", out_dir=out), "no frames"),
        (ExportRequest(frames=[good], character="h", out_dir=out, engines=frozenset({"unreal"})),
         "unknown engine"),
        (ExportRequest(frames=[good], character="h", out_dir=out, remover="rembg:not-here"),
         "--remover flood"),
        (ExportRequest(frames=[good], character="h", out_dir=out, pack="circle"), "--pack"),
        (ExportRequest(frames=[good], character="h", out_dir=out, godot_res="sprites/"), "res://"),
        (ExportRequest(frames=[good], character="h", out_dir=out, max_texture_size=32), "max-texture-size"),
    ]
    for request, message in cases:
        with pytest.raises(ExportError) as err:
            export_sprites(request)
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_output_dir_that_is_not_writable(tmp_path):
    frames = [FrameSpec(_frame(tmp_path / "f.png"), "idle")]
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="not writable|is a file"):
        export_sprites(ExportRequest(frames=frames, character="h", out_dir=blocker / "out"))
    with pytest.raises(ExportError, match="is a file"):
        export_sprites(ExportRequest(frames=frames, character="h", out_dir=blocker))


def test_empty_frame_after_removal_is_an_error(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (40, 40), (250, 250, 250)).save(blank)
    with pytest.raises(ExportError, match="fully transparent"):
        export_sprites(ExportRequest(frames=[FrameSpec(blank)], character="h", out_dir=tmp_path / "o"))


def test_already_transparent_frames_keep_their_alpha(tmp_path):
    rgba = Image.new("RGBA", (60, 80), (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (20, 50), (250, 250, 250, 255)), (20, 20))  # white on transparent
    path = tmp_path / "cut.png"
    rgba.save(path)
    result = export_sprites(ExportRequest(frames=[FrameSpec(path)], character="h", out_dir=tmp_path / "o",
                                          engines=frozenset({"json"})))
    frame = result.sheet.frames[0]
    assert (frame.source_w, frame.source_h) == (20, 50)  # white figure kept, not flooded away
    assert any("own alpha" in w for w in result.warnings)
