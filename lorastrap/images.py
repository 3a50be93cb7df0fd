"""Loading and validating user images, the image files of a folder a person edits, seed crops."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.imageio import DecodeError, decode_image
from lorastrap.kernel.pngmeta import png_bytes

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
CROP_MODES = ("zoom", "quad", "none")
PARTIAL_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", "~")


@dataclass
class LoadedImage:
    path: Path
    image: Image.Image  # fully decoded, upright, sRGB, 8-bit RGB or RGBA
    data: bytes  # the file's bytes when they already decode to `image`, else `image` as PNG
    notes: list[str] = field(default_factory=list)  # what decoding changed (rotation, bit depth ...)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def is_partial_name(name: str) -> bool:
    """Files a copy or a download is still writing, or hidden files: never read them."""
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


def curated_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, ignored non-image files) in a curated folder, sorted; partial files are skipped."""
    images: list[Path] = []
    ignored: list[Path] = []
    if not folder.is_dir():
        return images, ignored
    for path in sorted(folder.iterdir()):
        if not path.is_file() or is_partial_name(path.name):
            continue
        if is_image_name(path):
            images.append(path)
        elif path.suffix.lower() != ".txt":
            ignored.append(path)
    return images, ignored


def load_image(path: Path, *, min_side: int = 64, max_pixels: int = 64_000_000) -> LoadedImage:
    """Open and fully decode an image (lorastrap.kernel.imageio: EXIF rotation, 16-bit, palette
    transparency, CMYK/ICC to sRGB; animations refused), or raise a one-line UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise UserError(f"{path}: not a file; pass an image file")
    data = path.read_bytes()
    try:
        decoded = decode_image(data, max_pixels=max_pixels, label=str(path))
    except DecodeError as exc:
        raise UserError(str(exc)) from None
    w, h = decoded.image.size
    if min(w, h) < min_side:
        raise UserError(f"{path}: {w}x{h} is smaller than {min_side} px on a side; use a larger image")
    if decoded.format != "PNG" or decoded.changed:
        data = png_bytes(decoded.image)
    return LoadedImage(path=path, image=decoded.image, data=data,
                       notes=[f"{path.name}: {note}" for note in decoded.notes])


def _square_from_top(image: Image.Image, side_frac: float) -> Image.Image:
    """A crop centred on the vertical centre line, starting at the top: full → upper body → face."""
    w, h = image.size
    side = max(1, min(w, round(h * side_frac)))
    left = (w - side) // 2
    return image.crop((left, 0, left + side, min(h, side)))


def seed_crops(image: Image.Image, mode: str) -> list[tuple[str, Image.Image]]:
    """Split one seed image into 4 training pieces. Returns (name, image) pairs."""
    w, h = image.size
    if mode == "quad":
        hw, hh = w // 2, h // 2
        boxes = {
            "top-left": (0, 0, hw, hh),
            "top-right": (hw, 0, w, hh),
            "bottom-left": (0, hh, hw, h),
            "bottom-right": (hw, hh, w, h),
        }
        return [(name, image.crop(box)) for name, box in boxes.items()]
    if mode == "zoom":
        full = image
        return [
            ("full", full),
            ("upper-body", _square_from_top(image, 0.6)),
            ("bust", _square_from_top(image, 0.4)),
            ("face", _square_from_top(image, 0.25)),
        ]
    raise UserError(f"unknown crop mode {mode!r}; use one of {', '.join(CROP_MODES)}")


CROP_VIEW_TAGS = {
    "full": ["full body"],
    "upper-body": ["upper body"],
    "bust": ["upper body", "close-up"],
    "face": ["portrait", "close-up"],
}
