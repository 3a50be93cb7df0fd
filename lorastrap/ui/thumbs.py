"""Thumbnails, made once per file version and kept in `.lorastrap/cache/thumbs/`.

The key is the file's workspace path, size and mtime: an edited image gets a new thumbnail, an
unchanged one is never decoded again. Written atomically, so two requests racing for the same
thumbnail both end with a whole file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.kernel.errors import UserError

THUMB_PX = 256


def thumb_key(rel: str, path: Path, px: int = THUMB_PX) -> str:
    st = path.stat()
    return hashlib.sha1(f"{rel}|{st.st_size}|{st.st_mtime_ns}|{px}".encode()).hexdigest()


def thumbnail(cache_dir: Path, rel: str, path: Path, px: int = THUMB_PX) -> Path:
    """The cached WebP thumbnail of `path` (at most px on a side; small images stay as they are)."""
    out = cache_dir / "thumbs" / f"{thumb_key(rel, path, px)}.webp"
    if out.is_file():
        return out
    import io

    try:
        with Image.open(path) as im:
            im.draft("RGB", (px, px))  # JPEG: decode at a reduced scale
            im = im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else "RGB")
            im.thumbnail((px, px))
            buf = io.BytesIO()
            im.save(buf, format="WEBP", quality=82, method=4)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{rel}: not a readable image ({exc.__class__.__name__})") from None
    atomic_write_bytes(out, buf.getvalue())
    return out


def version_tag(path: Path) -> str:
    """A short tag that changes when the file changes: `?v=` in URLs, so caches may keep them long."""
    st = path.stat()
    return f"{st.st_mtime_ns:x}{st.st_size:x}"[-12:]
