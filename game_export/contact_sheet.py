"""Labelled contact sheets: a grid of images, each fitted into a square cell with its name below.

Used for the sprite export preview and by other parts of lorastrap (bootstrap round sheets,
style-clash sheets, and — handed to training — its sample grids), so it depends on pillow only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.kernel.pngmeta import png_bytes

_BACKGROUND = (255, 255, 255, 255)
_TEXT = (20, 20, 20, 255)
_CHECK_LIGHT = (204, 204, 204, 255)
_CHECK_DARK = (153, 153, 153, 255)
_CHECK_SQUARE = 8
_GAP = 4
_FONT_SIZE = 12
_MAX_AUTO_CELL = 256


@dataclass
class SheetCell:
    image: Image.Image
    label: str = ""


def _font(size: int = _FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten `text` with an ellipsis until it fits `width` pixels."""
    if _text_size(draw, text, font)[0] <= width:
        return text
    while text and _text_size(draw, text + "…", font)[0] > width:
        text = text[:-1]
    return text + "…" if text else ""


def checkerboard_image(width: int, height: int, square: int = _CHECK_SQUARE) -> Image.Image:
    """An RGBA checkerboard, the usual way editors show transparency."""
    board = Image.new("RGBA", (width, height), _CHECK_LIGHT)
    draw = ImageDraw.Draw(board)
    for y in range(0, height, square):
        for x in range((y // square) % 2 * square, width, 2 * square):
            draw.rectangle((x, y, x + square - 1, y + square - 1), fill=_CHECK_DARK)
    return board


def _fitted(image: Image.Image, cell: int) -> Image.Image:
    """The image scaled to fit a `cell`-pixel square keeping aspect (small ones are enlarged)."""
    rgba = image.convert("RGBA")
    w, h = rgba.size
    if w == 0 or h == 0:
        return Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    scale = min(cell / w, cell / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == rgba.size:
        return rgba
    # Enlarging small sprites with NEAREST keeps pixel art crisp; shrinking wants a real filter.
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return rgba.resize(size, resample)


def make_contact_sheet(
    cells: Sequence[SheetCell],
    columns: int,
    cell_size: int | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    checkerboard: bool = False,
) -> Image.Image:
    """Lay `cells` out `columns` per row in square cells with labels; returns an RGBA image.

    `cell_size` defaults to the largest image side (capped at 256). With `checkerboard` each cell
    shows transparency as a checkerboard, otherwise images are composited on white.
    """
    if columns < 1:
        raise ValueError("columns must be at least 1")
    if cell_size is None:
        largest = max((max(c.image.size) for c in cells), default=64)
        cell_size = max(16, min(_MAX_AUTO_CELL, largest))
    rows = max(1, -(-len(cells) // columns))
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    line_h = _text_size(probe, "Ag", font)[1] + 4
    has_labels = any(c.label for c in cells)
    label_h = line_h if has_labels else 0
    title_h = line_h + _GAP if title else 0
    row_label_w = 0
    if row_labels:
        row_label_w = max(_text_size(probe, label, font)[0] for label in row_labels) + 2 * _GAP

    pitch_x = cell_size + _GAP
    pitch_y = cell_size + label_h + _GAP
    width = row_label_w + _GAP + columns * pitch_x
    height = title_h + _GAP + rows * pitch_y
    sheet = Image.new("RGBA", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((_GAP, _GAP), _fit_text(draw, title, font, width - 2 * _GAP), fill=_TEXT, font=font)

    board = checkerboard_image(cell_size, cell_size) if checkerboard else None
    for index, cell in enumerate(cells):
        row, col = divmod(index, columns)
        x0 = row_label_w + _GAP + col * pitch_x
        y0 = title_h + _GAP + row * pitch_y
        if board is not None:
            sheet.paste(board, (x0, y0))
        fitted = _fitted(cell.image, cell_size)
        offset = (x0 + (cell_size - fitted.width) // 2, y0 + (cell_size - fitted.height) // 2)
        sheet.alpha_composite(fitted, offset)
        if cell.label:
            text = _fit_text(draw, cell.label, font, cell_size)
            text_w = _text_size(draw, text, font)[0]
            draw.text((x0 + (cell_size - text_w) // 2, y0 + cell_size + 2), text, fill=_TEXT, font=font)
    for row, label in enumerate(row_labels or ()):
        if row >= rows:
            break
        y = title_h + _GAP + row * pitch_y + cell_size // 2 - line_h // 2
        draw.text((_GAP, y), label, fill=_TEXT, font=font)
    return sheet


def save_contact_sheet(sheet: Image.Image, path: Path) -> Path:
    """Write `sheet` as PNG atomically (temp file + rename)."""
    return atomic_write_bytes(path, png_bytes(sheet))


def write_contact_sheet(cells: Sequence[tuple[Image.Image, str]], path: Path, title: str | None = None,
                        columns: int = 8) -> Path:
    """A sheet of (image, label) pairs, written atomically: what training is handed to draw its
    sample grids with (`lorastrap.training.samples.SampleSheet`), so training imports no game_export."""
    sheet = make_contact_sheet([SheetCell(image, label) for image, label in cells],
                               columns=max(1, min(columns, len(cells))), title=title)
    return save_contact_sheet(sheet, path)
