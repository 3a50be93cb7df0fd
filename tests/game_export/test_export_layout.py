"""Layout and packing: one scale, shared baseline, pivot, pixel art, grid and tight packing."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from game_export import ExportRequest, FrameSpec, export_sprites
from game_export.errors import ExportError
from game_export.layout import Trimmed, lay_out, reduce_palette
from game_export.packing import next_pot, pack_grid, pack_tight
from game_export.synthetic import Figure, draw_frame, save_frame


def _walk_frames(tmp_path, count=6, source=(128, 160)):
    """Same figure height, different positions and leg spread; one frame rendered at 2x size."""
    specs = []
    for i in range(count):
        scale = 2 if i == count - 1 else 1
        fig = Figure(x=(20 + 7 * i) * scale, y=(10 + 3 * i) * scale, height=120 * scale,
                     stride=(-1) ** i * 0.8)
        image, _ = draw_frame((source[0] * scale, source[1] * scale), fig)
        specs.append(FrameSpec(save_frame(image, tmp_path / f"walk_{i}.png"), "walk"))
    return specs


def _regions(result):
    pages = [Image.open(result.out_dir / p.file) for p in result.sheet.pages]
    return [(f, np.asarray(pages[f.page].crop((f.x, f.y, f.x + f.w, f.y + f.h)))) for f in result.sheet.frames]


@pytest.mark.parametrize("pack", ["grid", "tight"])
def test_same_height_shared_baseline_and_pivot(tmp_path, pack):
    specs = _walk_frames(tmp_path)
    result = export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "out",
                                          engines=frozenset({"json"}), size=96, pack=pack,
                                          pivot=(0.5, 1.0)))
    heights, feet = set(), set()
    for frame, region in _regions(result):
        rows = np.nonzero(region[..., 3].max(axis=1) > 127)[0]
        heights.add(rows.max() - rows.min() + 1)
        # feet row in the logical frame, measured from the pivot (bottom centre)
        feet.add(frame.offset_y + rows.max() + 1 - result.sheet.pivot[1] * frame.source_h)
    assert max(heights) - min(heights) <= 1 and abs(max(heights) - 96) <= 1
    assert feet == {0.0}
    assert result.sheet.pivot == (0.5, 1.0)


def test_pivot_is_configurable_and_validated(tmp_path):
    specs = _walk_frames(tmp_path, count=2)
    result = export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "o",
                                          engines=frozenset({"json"}), pivot=(0.25, 0.5)))
    assert result.sheet.pivot == (0.25, 0.5)
    with pytest.raises(ExportError, match="pivot"):
        export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "p",
                                     pivot=(1.5, 0.0)))


def test_pixel_art_uses_nearest_and_a_shared_palette():
    rng = np.random.default_rng(0)
    sources = []
    for _ in range(3):
        a = np.zeros((40, 20, 4), dtype=np.uint8)
        a[..., :3] = rng.integers(0, 255, (40, 20, 3))
        a[..., 3] = 255
        img = Image.fromarray(a, "RGBA")
        sources.append(Trimmed(img, (0, 0, 20, 40), (64, 64)))
    cell, laid = lay_out(sources, 80, (0.5, 1.0), pixel_art=True, palette=8)
    colours = {tuple(c) for lo in laid for c in np.asarray(lo.image)[..., :3].reshape(-1, 3)}
    assert len(colours) <= 8
    alphas = {int(v) for lo in laid for v in np.unique(np.asarray(lo.image)[..., 3])}
    assert alphas <= {0, 255}
    # Nearest-neighbour 2x: every 2x2 block is one colour.
    big = np.asarray(laid[0].image)
    assert (big[::2, ::2] == big[1::2, 1::2]).all()
    assert len(reduce_palette([s.image for s in sources], 4)) == 3


def test_grid_cells_divide_the_sheet_exactly_and_split_pages():
    groups = [list(range(0, 10)), list(range(10, 13)), list(range(13, 40))]
    packing = pack_grid((70, 110), groups, margin=3, max_size=512)
    pw, ph = packing.pitch
    assert len(packing.pages) > 1
    for w, h in packing.pages:
        assert w % pw == 0 and h % ph == 0 and w <= 512 and h <= 512
    for slot in packing.slots:
        assert (slot.x - 3) % pw == 0 and (slot.y - 3) % ph == 0
    # every animation starts a new row
    assert packing.slots[10].x == 3 and packing.slots[13].x == 3


def test_grid_power_of_two():
    packing = pack_grid((70, 110), [list(range(5))], margin=2, max_size=1024, power_of_two=True)
    for w, h in packing.pages:
        assert w == next_pot(w) and h == next_pot(h)
        assert w % packing.pitch[0] == 0 and h % packing.pitch[1] == 0


def _assert_no_overlap(packing, margin):
    for i, a in enumerate(packing.slots):
        w, h = packing.pages[a.page]
        assert a.x - margin >= 0 and a.y - margin >= 0
        assert a.x + a.w + margin <= w and a.y + a.h + margin <= h
        for b in packing.slots[:i]:
            if a.page == b.page:
                assert (a.x + a.w + margin <= b.x - margin or b.x + b.w + margin <= a.x - margin
                        or a.y + a.h + margin <= b.y - margin or b.y + b.h + margin <= a.y - margin)


def test_tight_packing_is_dense_on_mixed_sizes():
    rng = random.Random(7)
    sizes = [(rng.randint(30, 160), rng.randint(40, 240)) for _ in range(60)]
    packing = pack_tight(sizes, margin=0, max_size=4096)
    _assert_no_overlap(packing, 0)
    assert len(packing.pages) == 1
    assert packing.efficiency(sizes) >= 0.85


def test_tight_packing_pages_padding_and_power_of_two():
    rng = random.Random(1)
    sizes = [(rng.randint(40, 120), rng.randint(40, 120)) for _ in range(40)]
    packing = pack_tight(sizes, margin=2, max_size=256, power_of_two=True)
    assert len(packing.pages) > 1
    _assert_no_overlap(packing, 2)
    assert all(w == next_pot(w) <= 256 and h == next_pot(h) <= 256 for w, h in packing.pages)
    with pytest.raises(ExportError, match="max-texture-size"):
        pack_tight([(300, 10)], margin=0, max_size=256)


def test_extrusion_repeats_edge_pixels(tmp_path):
    # A frame whose figure touches the cell bottom: the row under the cell repeats the feet.
    specs = _walk_frames(tmp_path, count=1)
    result = export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "o",
                                          engines=frozenset({"json"}), padding=1, extrude=2))
    page = np.asarray(Image.open(result.out_dir / result.sheet.pages[0].file))
    f = result.sheet.frames[0]
    bottom = page[f.y + f.h - 1, f.x:f.x + f.w]
    assert (page[f.y + f.h, f.x:f.x + f.w] == bottom).all()
    assert (page[f.y + f.h + 1, f.x:f.x + f.w] == bottom).all()
    assert (page[f.y + f.h + 2, f.x:f.x + f.w] == 0).all()  # padding stays empty
