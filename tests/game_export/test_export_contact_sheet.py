"""Contact sheets: geometry, labels, checkerboard, atomic save."""

from __future__ import annotations

import numpy as np
from PIL import Image

from game_export.contact_sheet import SheetCell, make_contact_sheet, save_contact_sheet


def _red(w: int, h: int) -> Image.Image:
    return Image.new("RGBA", (w, h), (255, 0, 0, 255))


def test_grid_has_one_cell_per_image_and_keeps_aspect():
    cells = [SheetCell(_red(50, 100), f"f{i}") for i in range(5)]
    sheet = make_contact_sheet(cells, columns=2, cell_size=64)
    a = np.asarray(sheet)
    red = (a[..., 0] == 255) & (a[..., 1] == 0) & (a[..., 3] == 255)
    # 5 images scaled to 32x64 (aspect 1:2 kept inside a 64 px square)
    assert red.sum() == 5 * 32 * 64
    rows = np.nonzero(red.any(axis=1))[0]
    cols = np.nonzero(red.any(axis=0))[0]
    assert len(np.unique(np.diff(cols))) <= 2  # two column blocks only
    assert rows.max() - rows.min() + 1 > 2 * 64  # three rows of cells


def test_labels_title_and_row_labels_are_drawn():
    plain = make_contact_sheet([SheetCell(_red(32, 32))], columns=1, cell_size=32)
    labelled = make_contact_sheet([SheetCell(_red(32, 32), "walk_00")], columns=1, cell_size=32,
                                  title="Hero", row_labels=["down"])
    assert labelled.height > plain.height and labelled.width > plain.width
    a = np.asarray(labelled)
    dark = (a[..., :3].max(axis=2) < 80) & (a[..., 3] == 255)
    assert dark.sum() > 30  # text pixels exist


def test_checkerboard_shows_transparency():
    clear = SheetCell(Image.new("RGBA", (40, 40), (0, 0, 0, 0)))
    on_white = np.asarray(make_contact_sheet([clear], columns=1, cell_size=40))
    on_checker = np.asarray(make_contact_sheet([clear], columns=1, cell_size=40, checkerboard=True))
    assert len(np.unique(on_white[..., :3].reshape(-1, 3), axis=0)) == 1
    assert len(np.unique(on_checker[..., :3].reshape(-1, 3), axis=0)) >= 3


def test_save_is_atomic_png(tmp_path):
    sheet = make_contact_sheet([SheetCell(_red(10, 10), "x")], columns=1)
    path = save_contact_sheet(sheet, tmp_path / "sub" / "sheet.png")
    assert Image.open(path).size == sheet.size
    assert [p.name for p in path.parent.iterdir()] == ["sheet.png"]  # no temp files left
