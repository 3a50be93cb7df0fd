"""On-disk cache of VAE latents and text embeddings, as safetensors (never pickle).

Keys: latents by image sha256 + model hash + bucket size + flip; text by caption + model hash.
Entries are written atomically; an unreadable entry counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from lorastrap.kernel.atomic import atomic_write_bytes


def cache_key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


class TensorCache:
    """A directory of `<kind>/<aa>/<key>.safetensors` entries, counting hits and misses."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = Path(root) / kind
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        path = self.path(key)
        if path.is_file():
            try:
                tensors = load_file(str(path))
                self.hits += 1
                return tensors
            except Exception:  # noqa: BLE001 - a damaged entry is simply recomputed
                path.unlink(missing_ok=True)
        self.misses += 1
        return None

    def put(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        data = save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
        atomic_write_bytes(self.path(key), data)


def latent_key(image_sha256: str, model_hash: str, size: tuple[int, int], flip: bool) -> str:
    return cache_key("latent-v1", image_sha256, model_hash, f"{size[0]}x{size[1]}", int(flip))


def text_key(caption: str, model_hash: str) -> str:
    return cache_key("text-v1", model_hash, caption)
