"""Unity .png.meta parsed as YAML: rects, the flipped y axis, pivots, stable GUIDs and ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from game_export import ExportRequest, FrameSpec, export_sprites
from game_export.synthetic import Figure, draw_frame, save_frame

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 220), (220, 200, 30), (200, 40, 200), (30, 200, 200)]


def _frames(tmp_path: Path) -> list[FrameSpec]:
    specs = []
    for i, colour in enumerate(COLOURS):
        # Heights differ so the frames are not interchangeable.
        image, _ = draw_frame((100, 140), Figure(x=30, y=10 + 4 * i, height=120 - 4 * i, colour=colour))
        specs.append(FrameSpec(save_frame(image, tmp_path / f"run_{i}.png"), "run"))
    return specs


def _export(tmp_path, character="hero", out="out", **kw):
    return export_sprites(ExportRequest(frames=_frames(tmp_path), character=character,
                                        out_dir=tmp_path / out, engines=frozenset({"unity"}), **kw))


def _meta(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _head_colour(region: np.ndarray) -> tuple[int, int, int]:
    """Colour of the topmost opaque row's middle pixel (the head carries the frame's colour)."""
    rows = np.nonzero(region[..., 3].max(axis=1) == 255)[0]
    row = region[rows.min() + 2]
    xs = np.nonzero(row[..., 3] == 255)[0]
    return tuple(int(v) for v in row[xs[len(xs) // 2], :3])


@pytest.mark.parametrize("pack", ["grid", "tight"])
def test_meta_rects_are_bottom_left_and_inside_the_texture(tmp_path, pack):
    result = _export(tmp_path, pack=pack, max_texture_size=256, pixels_per_unit=32)
    for page in result.sheet.pages:
        meta = _meta(result.out_dir / f"{page.file}.meta")
        png = np.asarray(Image.open(result.out_dir / page.file))
        height, width = png.shape[:2]
        importer = meta["TextureImporter"]
        assert meta["fileFormatVersion"] == 2 and len(meta["guid"]) == 32
        assert importer["spriteMode"] == 2 and importer["textureType"] == 8
        assert importer["spritePixelsToUnits"] == 32 and importer["textureSettings"]["filterMode"] == 1
        assert importer["maxTextureSize"] >= max(width, height) and importer["nPOTScale"] == 0
        sprites = importer["spriteSheet"]["sprites"]
        assert sprites
        for sprite in sprites:
            r = sprite["rect"]
            x, y, w, h = r["x"], r["y"], r["width"], r["height"]
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
            top = height - (y + h)  # Unity y is measured from the bottom
            region = png[top:top + h, x:x + w]
            index = int(sprite["name"].rsplit("_", 1)[1])
            assert _head_colour(region) == COLOURS[index]
            px, py = sprite["pivot"]["x"], sprite["pivot"]["y"]
            # The pivot (bottom centre of the character) sits on the feet row.
            feet = np.nonzero(region[..., 3].max(axis=1) > 127)[0].max()
            assert abs((h - py * h) - (feet + 1)) < 1e-6
            if pack == "grid":
                assert (px, py) == (0.5, 0.0) and sprite["alignment"] == 7
            else:
                assert sprite["alignment"] in (7, 9)
        table = importer["spriteSheet"]["nameFileIdTable"]
        assert table == {s["name"]: s["internalID"] for s in sprites}
        assert len({s["spriteID"] for s in sprites}) == len(sprites)


def test_guids_and_ids_are_stable_and_per_character(tmp_path):
    first = _export(tmp_path, out="a")
    second = _export(tmp_path, out="b")
    other = _export(tmp_path, character="villain", out="c")
    page = first.sheet.pages[0].file
    a = (first.out_dir / f"{page}.meta").read_text()
    assert a == (second.out_dir / f"{page}.meta").read_text()  # a re-export keeps every id
    meta_a = _meta(first.out_dir / f"{page}.meta")
    meta_c = _meta(other.out_dir / f"{other.sheet.pages[0].file}.meta")
    assert meta_a["guid"] != meta_c["guid"]
    ids_a = {s["internalID"] for s in meta_a["TextureImporter"]["spriteSheet"]["sprites"]}
    ids_c = {s["internalID"] for s in meta_c["TextureImporter"]["spriteSheet"]["sprites"]}
    assert not ids_a & ids_c and 0 not in ids_a


def test_pixel_art_uses_point_filter_and_no_compression(tmp_path):
    result = _export(tmp_path, pixel_art=True, size=48, palette=16)
    importer = _meta(result.out_dir / f"{result.sheet.pages[0].file}.meta")["TextureImporter"]
    assert importer["textureSettings"]["filterMode"] == 0
    assert importer["platformSettings"][0]["textureCompression"] == 0
