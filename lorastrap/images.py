"""Loading and validating user images; seed crops."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from lorastrap.errors import UserError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
CROP_MODES = ("zoom", "quad", "none")


@dataclass
class LoadedImage:
    path: Path
    image: Image.Image  # fully decoded, RGB or RGBA
    data: bytes  # the file's bytes as stored (PNG re-encoded when the input was not PNG)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def load_image(path: Path, *, min_side: int = 64, max_pixels: int = 64_000_000) -> LoadedImage:
    """Open and fully decode an image, or raise a one-line UserError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise UserError(f"{path}: not a file; pass an image file")
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
                if w * h > max_pixels:
                    raise UserError(
                        f"{path}: {w}x{h} is over the pixel limit ({max_pixels:,}); scale it down first"
                    )
                probe.load()
                image = probe.convert("RGBA" if "A" in probe.getbands() else "RGB")
                fmt = probe.format
        except UserError:
            raise
        except UnidentifiedImageError:
            raise UserError(f"{path}: not an image (PNG, JPEG, WebP or BMP expected)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(f"{path}: image is too large (decompression bomb guard); scale it down") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise UserError(f"{path}: corrupt or truncated image ({exc}); re-export it") from None
    if min(w, h) < min_side:
        raise UserError(f"{path}: {w}x{h} is smaller than {min_side} px on a side; use a larger image")
    if fmt != "PNG":
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    return LoadedImage(path=path, image=image, data=data)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


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
