"""Reading safetensors files defensively: a truncated or foreign file gives a UserError, not a
Rust panic message."""

from __future__ import annotations

import json
from pathlib import Path

from lorastrap.kernel.errors import UserError


def _header(path: Path) -> dict:
    """Parse and validate the JSON header against the file size (cheap: no tensor is read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise ValueError("shorter than a safetensors header")
            header_len = int.from_bytes(raw_len, "little")
            if header_len > size - 8 or header_len > 100 << 20:
                raise ValueError("header length beyond the end of the file")
            header = json.loads(fh.read(header_len))
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist; check the path") from exc
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a valid safetensors file ({exc}); re-download or "
                        "re-save it") from exc
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end > size:
        raise UserError(f"{path} is truncated ({size} bytes, needs {8 + header_len + end}); "
                        "re-download or re-save it")
    return header


def check_safetensors(path: Path) -> None:
    _header(Path(path))


def safetensors_keys(path: Path) -> list[str]:
    return [k for k in _header(Path(path)) if k != "__metadata__"]


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, from the header alone."""
    return {k: tuple(int(d) for d in v["shape"]) for k, v in _header(Path(path)).items() if k != "__metadata__"}


def safetensors_metadata(path: Path) -> dict[str, str]:
    return dict(_header(Path(path)).get("__metadata__") or {})


def load_safetensors(path: Path) -> tuple[dict, dict[str, str]]:
    """All tensors and the metadata of a checked safetensors file."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = safetensors_metadata(path)
    try:
        return load_file(str(path)), meta
    except Exception as exc:  # noqa: BLE001 - safetensors raises SafetensorError/OSError variants
        raise UserError(f"{path} cannot be read ({exc}); re-download or re-save it") from exc
