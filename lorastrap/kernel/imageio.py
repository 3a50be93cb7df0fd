"""Decoding the images people really have into 8-bit sRGB RGB/RGBA pixels, or a clear error.

Pillow's plain `convert("RGB")` damages several common inputs silently:
- a 16-bit greyscale PNG (mode I;16/I) is clipped at 255, so it comes out nearly white;
- a phone photo's EXIF orientation is ignored, so a portrait is stored on its side;
- a CMYK or wide-gamut photo with an ICC profile gets its numbers reinterpreted as sRGB;
- a palette image's transparent index becomes an opaque colour;
- an animated GIF/WebP/APNG silently becomes its first frame.
`decode_image` fixes each, says what it did in `notes`, and tells whether the pixels differ
from what the file's bytes decode to (`changed`), so a caller keeps the original bytes only when
they are already what it will use.

Shared by lorastrap's image intake, training and the sprite exporter (game_export imports only the
kernel).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError


class DecodeError(ValueError):
    """The file is not an image that can be used; the message says why (one line)."""


@dataclass
class Decoded:
    image: Image.Image  # RGB or RGBA, 8 bits per channel, sRGB, upright
    format: str | None
    changed: bool  # the pixels differ from a plain decode of the file (re-encode to keep them)
    notes: list[str] = field(default_factory=list)


_HAS_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}
_SRGB = ImageCms.createProfile("sRGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale (I;16*, I) and float (F) images scaled into 0..255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        peak = 1.0 if values.size and values.max() <= 1.0 else 255.0
    else:  # I;16 / I: 16-bit PNGs and TIFFs use 0..65535
        sixteen = image.mode.startswith("I;16") or (values.size and values.max() > 255)
        peak = 65535.0 if sixteen else 255.0
    scaled = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, "L")


_PROBE = bytes([0, 0, 0, 255, 255, 255, 200, 40, 40, 40, 200, 60, 40, 60, 200, 128, 128, 128,
                240, 230, 40, 30, 200, 220])


def _acts_as_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """Whether a profile maps colours onto sRGB unchanged (sRGB under any name, D50 variants)."""
    probe = Image.frombytes("RGB", (len(_PROBE) // 3, 1), _PROBE)
    try:
        mapped = ImageCms.profileToProfile(probe, profile, _SRGB, outputMode="RGB")
    except (OSError, ImageCms.PyCMSError):
        return False
    return max(abs(a - b) for a, b in zip(mapped.tobytes(), _PROBE)) <= 1


def _icc_to_srgb(image: Image.Image, notes: list[str]) -> tuple[Image.Image, bool]:
    profile = image.info.get("icc_profile")
    if not profile:
        return image, False
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        description = (ImageCms.getProfileDescription(source) or "").strip()
    except (OSError, ImageCms.PyCMSError):
        notes.append("its ICC colour profile could not be read and was ignored")
        return image, False
    if image.mode in ("RGB", "RGBA") and _acts_as_srgb(source):
        return image, False  # sRGB (under whatever name): leave the bytes alone
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    base = image.convert("RGB") if image.mode in ("RGBA", "P", "PA") else image
    if base.mode not in ("RGB", "CMYK", "L"):
        base = base.convert("RGB")
    try:
        out = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
    except (OSError, ImageCms.PyCMSError):
        notes.append(f"its ICC profile ({description or 'unnamed'}) could not be applied and was ignored")
        return image, False
    if alpha is not None:
        out.putalpha(alpha)
    notes.append(f"colours converted from its ICC profile ({description or 'unnamed'}) to sRGB")
    return out, True


def normalise(image: Image.Image, notes: list[str]) -> tuple[Image.Image, bool]:
    """Upright, sRGB, 8-bit RGB/RGBA; returns (image, changed)."""
    changed = False
    upright = ImageOps.exif_transpose(image)
    if upright is not image and upright is not None:
        orientation = image.getexif().get(0x0112, 1)
        if orientation != 1:
            notes.append(f"rotated upright from its EXIF orientation ({orientation})")
            changed = True
        image = upright
    image, converted = _icc_to_srgb(image, notes)
    changed |= converted
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image, changed
    if mode.startswith("I") or mode == "F":
        notes.append(f"{'16' if mode.startswith('I;16') or mode == 'I' else '32'}-bit greyscale scaled to 8 bits")
        return _to_8bit(image).convert("RGB"), True
    has_alpha = mode in _HAS_ALPHA or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB"), True


def decode_image(source: Path | bytes, *, max_pixels: int = 64_000_000, animated: str = "refuse",
                 label: str | None = None) -> Decoded:
    """Decode a file (or its bytes) fully; `animated="first"` takes the first frame with a note,
    "refuse" raises. Raises DecodeError for anything that is not a usable image."""
    name = label or (str(source) if isinstance(source, Path) else "image")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
                if w * h > max_pixels:
                    raise DecodeError(f"{name}: {w}x{h} is over the pixel limit ({max_pixels:,}); scale it down first")
                frames = getattr(probe, "n_frames", 1)
                if frames > 1:
                    if animated != "first":
                        raise DecodeError(f"{name}: an animated image ({frames} frames); save the frame you "
                                          "want as a PNG (or each frame as its own file)")
                    notes.append(f"animated ({frames} frames): only the first frame is used")
                    probe.seek(0)
                probe.load()
                fmt = probe.format
                image, changed = normalise(probe, notes)
                image = image.copy() if image is probe else image
        except DecodeError:
            raise
        except UnidentifiedImageError:
            raise DecodeError(f"{name}: not an image (PNG, JPEG, WebP or BMP expected)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DecodeError(f"{name}: image is too large (decompression bomb guard); scale it down") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DecodeError(f"{name}: corrupt or truncated image ({exc}); re-export it") from None
    return Decoded(image, fmt, changed or frames > 1, notes)
