"""PNG files as lorastrap writes and reads them: the bytes (the one PNG encoder), and the text
chunks of generated images — A1111 `parameters` (written and parsed) and the `lorastrap`
provenance JSON (the one reader; the sprite exporter, curation and coverage read views with it).

The `parameters` text is what A1111/Forge write and what PNG-info readers (A1111, ComfyUI,
Civitai) parse:

    <prompt lines>
    Negative prompt: <negative prompt lines>
    Steps: 20, Sampler: DDIM, CFG scale: 6.0, Seed: 1, Size: 64x64, Model hash: …, Model: …
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from lorastrap.kernel.atomic import atomic_write_bytes

PARAMETERS_KEY = "parameters"
PROVENANCE_KEY = "lorastrap"
# A1111's own pattern for one `Key: value` field of the settings line (value may be "quoted").
_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_NEGATIVE = "Negative prompt:"


def quote(value: object) -> str:
    """A1111's quoting: values with a comma, colon or newline become JSON strings."""
    text = str(value)
    if not any(c in text for c in ",:\n\""):
        return text
    return json.dumps(text, ensure_ascii=False)


def format_a1111_parameters(prompt: str, negative_prompt: str, settings: Mapping[str, object]) -> str:
    lines = [prompt]
    if negative_prompt:
        lines.append(f"{_NEGATIVE} {negative_prompt}")
    lines.append(", ".join(f"{k}: {quote(v)}" for k, v in settings.items() if v is not None))
    return "\n".join(lines)


@dataclass
class A1111Parameters:
    prompt: str
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.settings["Steps"])

    @property
    def seed(self) -> int:
        return int(self.settings["Seed"])

    @property
    def cfg_scale(self) -> float:
        return float(self.settings["CFG scale"])

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.settings["Size"].split("x")
        return int(width), int(height)

    @property
    def lora_hashes(self) -> dict[str, str]:
        """`Lora hashes: "a: 0123abcd, b: …"` as {name: hash}."""
        raw = self.settings.get("Lora hashes", "")
        pairs = (part.rsplit(":", 1) for part in raw.split(",") if ":" in part)
        return {name.strip(): value.strip() for name, value in pairs}


def parse_a1111_parameters(text: str) -> A1111Parameters:
    """Parse an A1111 `parameters` text (as A1111's PNG-info does)."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and len(_FIELD.findall(lines[-1])) >= 3:
        for key, value in _FIELD.findall(lines.pop()):
            if value.startswith('"') and value.endswith('"'):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = value[1:-1]
            settings[key.strip()] = value
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith(_NEGATIVE):
            target = negative_lines
            line = line[len(_NEGATIVE):].lstrip()
        target.append(line)
    return A1111Parameters("\n".join(prompt_lines).strip(), "\n".join(negative_lines).strip(), settings)


def png_bytes(image: Image.Image, parameters: str | None = None,
              provenance: Mapping[str, Any] | None = None, *, optimize: bool = False) -> bytes:
    """The image as PNG bytes, with the `parameters` and `lorastrap` chunks when given."""
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text(PARAMETERS_KEY, parameters)
    if provenance is not None:
        info.add_text(PROVENANCE_KEY, json.dumps(provenance, sort_keys=True, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=optimize)
    return buffer.getvalue()


def write_png(path: Path, image: Image.Image, parameters: str | None = None,
              provenance: Mapping[str, Any] | None = None) -> Path:
    """Write the PNG with its text chunks atomically."""
    return atomic_write_bytes(path, png_bytes(image, parameters, provenance))


def read_png_text(path: Path) -> dict[str, str]:
    with Image.open(path) as img:
        img.load()
        return {k: v for k, v in getattr(img, "text", {}).items()}


def read_provenance(path: Path) -> dict[str, Any]:
    """The `lorastrap` provenance of a generated PNG, read from the header (no pixel decoding);
    empty when the file has none or cannot be read (the image's own loading says what is wrong)."""
    try:
        with Image.open(path) as image:
            raw = image.info.get(PROVENANCE_KEY)
    except (OSError, ValueError, Image.DecompressionBombError):
        return {}
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def png_view(path: Path) -> str | None:
    """The view a generated image was made for ("from side", "from behind", ...), or None."""
    view = read_provenance(path).get("view")
    return view.strip() if isinstance(view, str) and view.strip() else None
