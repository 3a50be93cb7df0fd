"""TexturePacker hash JSON: every frame rectangle holds exactly that frame's pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from game_export import ExportRequest, FrameSpec, export_sprites
from game_export.synthetic import Figure, animation_frames, draw_frame, save_frame


def _sources(tmp_path):
    """(spec, rgb, truth mask) for frames of two animations, figures of different sizes."""
    out = []
    for i in range(7):
        anim = "idle" if i < 3 else "attack"
        fig = Figure(x=15 + 5 * i, y=12, height=90 + 6 * i, colour=(60 + 20 * i, 90, 200 - 15 * i))
        image, truth = draw_frame((120, 150), fig)
        out.append((FrameSpec(save_frame(image, tmp_path / f"{anim}_{i}.png"), anim),
                    np.asarray(image), truth))
    return out


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


def _erode(mask):
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def _aligned(region, rgb, truth):
    """Exported sprite and source figure on one canvas, at the offset where they match best
    (anti-aliased edges can move a bounding box by a pixel)."""
    top, left, bottom, right = _bbox(region[..., 3] > 127)
    t0, l0, t1, l1 = _bbox(truth)
    h = max(bottom - top, t1 - t0) + 2
    w = max(right - left, l1 - l0) + 2
    want = np.zeros((h, w), bool)
    want_rgb = np.zeros((h, w, 3), np.uint8)
    want[1:1 + t1 - t0, 1:1 + l1 - l0] = truth[t0:t1, l0:l1]
    want_rgb[1:1 + t1 - t0, 1:1 + l1 - l0] = rgb[t0:t1, l0:l1]
    best = None
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            canvas = np.zeros((h, w, 4), np.uint8)
            piece = region[top:bottom, left:right][: h - dy, : w - dx]
            canvas[dy:dy + piece.shape[0], dx:dx + piece.shape[1]] = piece
            got = canvas[..., 3] > 127
            iou = (got & want).sum() / (got | want).sum()
            if best is None or iou > best[0]:
                best = (iou, got, canvas)
    return best[1], best[2], want, want_rgb


@pytest.mark.parametrize("pack", ["grid", "tight"])
def test_json_frames_match_png_pixels(tmp_path, pack):
    sources = _sources(tmp_path)
    result = export_sprites(ExportRequest(frames=[s[0] for s in sources], character="hero",
                                          out_dir=tmp_path / "out", engines=frozenset({"json"}),
                                          pack=pack, fps=10))
    page = result.sheet.pages[0]
    data = json.loads((result.out_dir / page.file.replace(".png", ".json")).read_text())
    png = np.asarray(Image.open(result.out_dir / data["meta"]["image"]))
    assert data["meta"]["size"] == {"w": png.shape[1], "h": png.shape[0]}
    names = list(data["frames"])
    assert len(names) == 7
    for name, (spec, rgb, truth) in zip(names, sources):
        entry = data["frames"][name]
        f, sss, ss = entry["frame"], entry["spriteSourceSize"], entry["sourceSize"]
        assert set(entry) >= {"frame", "rotated", "trimmed", "spriteSourceSize", "sourceSize", "anchor", "pivot"}
        assert entry["anchor"] == entry["pivot"] == {"x": 0.5, "y": 1.0} and entry["duration"] == 100
        assert (sss["w"], sss["h"]) == (f["w"], f["h"])
        assert sss["x"] + sss["w"] <= ss["w"] and sss["y"] + sss["h"] <= ss["h"]
        assert entry["trimmed"] == ((f["w"], f["h"]) != (ss["w"], ss["h"]))
        region = png[f["y"]:f["y"] + f["h"], f["x"]:f["x"] + f["w"]]
        got, got_rgb, want, want_rgb = _aligned(region, rgb, truth)
        assert (got & want).sum() / (got | want).sum() >= 0.95
        solid = (got_rgb[..., 3] == 255) & _erode(want)  # opaque inside: the source pixels, untouched
        assert solid.sum() > 0.8 * want.sum()
        assert np.abs(got_rgb[solid][:, :3].astype(int) - want_rgb[solid].astype(int)).max() <= 2
    assert data["animations"] == {"idle": names[:3], "attack": names[3:]}
    aseprite = json.loads((result.out_dir / page.file.replace(".png", ".aseprite.json")).read_text())
    tags = aseprite["meta"]["frameTags"]
    assert [(t["name"], t["from"], t["to"]) for t in tags] == [("idle", 0, 2), ("attack", 3, 6)]
    assert aseprite["meta"]["lorastrap"]["names"] == names
    assert [aseprite["frames"][str(i)] for i in range(7)] == [data["frames"][n] for n in names]


def test_an_animation_over_two_pages_is_split_per_page_with_a_warning(tmp_path):
    specs = animation_frames(tmp_path, {"walk": 3}, size=(64, 80), x=15, y=6, height=64)
    result = export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "o",
                                          engines=frozenset({"json"}), max_texture_size=80))
    assert [f.page for f in result.sheet.frames] == [0, 0, 1]
    assert any("walk spans several pages" in w for w in result.warnings)
    parts = []
    for page in result.sheet.pages:
        stem = result.out_dir / page.file[:-len(".png")]
        data = json.loads(stem.with_suffix(".json").read_text())
        tags = json.loads(Path(f"{stem}.aseprite.json").read_text())["meta"]["frameTags"]
        assert tags == [{"name": "walk", "from": 0, "to": len(data["animations"]["walk"]) - 1,
                         "direction": "forward"}]
        assert data["meta"]["related_multi_packs"] == [f"{p.file[:-4]}.json" for p in result.sheet.pages
                                                       if p != page]
        parts += data["animations"]["walk"]
    assert parts == ["walk_00", "walk_01", "walk_02"]
