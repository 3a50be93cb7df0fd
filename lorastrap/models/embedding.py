"""Pluggable image embedders and cosine similarity, shared by the clash report and curation.

An `ImageEmbedder` turns images into L2-normalised rows, so a dot product is a cosine similarity.
- `ClipEmbedder`: CLIP image features from a LOCAL model folder (never downloads); used only when
  one is configured (`LORASTRAP_CLIP_MODEL` or an explicit path).
- `ColorStructureEmbedder`: model-free fallback, clearly WEAK (`weak=True`): it sees colour layout
  and coarse shape, not identity. Three parts, each unit-length and weighted so that the cosine of
  two embeddings is the weighted mean of the parts' cosines:
  Lab colour histograms per grid cell (square-rooted, so the cosine is a Bhattacharyya coefficient),
  gradient-orientation histograms per cell (a small HOG), and a 63-bit DCT perceptual hash (±1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lorastrap.kernel.errors import UserError

CLIP_ENV = "LORASTRAP_CLIP_MODEL"


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str
    weak: bool

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """[len(images), dim] float32, each row of unit length."""
        ...


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of rows: [n, d] × [m, d] → [n, m]; 1-D inputs give a scalar array."""
    a2, b2 = l2_normalise(np.atleast_2d(a)), l2_normalise(np.atleast_2d(b))
    sims = np.clip(a2 @ b2.T, -1.0, 1.0)
    return sims[0, 0] if np.ndim(a) == 1 and np.ndim(b) == 1 else sims


def paired_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of row i of `a` with row i of `b`."""
    return np.clip(np.sum(l2_normalise(a) * l2_normalise(b), axis=-1), -1.0, 1.0)


def _rgb(image: Image.Image, size: int) -> np.ndarray:
    """RGB in [0, 1] at size×size; transparency is composited on white like a sheet shows it."""
    rgba = image.convert("RGBA").resize((size, size), Image.Resampling.BILINEAR)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.float32) / 255.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [0, 1] → CIE Lab (D65): L in [0, 100], a/b roughly [-128, 127]."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                             [0.0193, 0.1192, 0.9505]], dtype=np.float32).T
    xyz /= np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def _cells(array: np.ndarray, grid: int) -> list[np.ndarray]:
    h, w = array.shape[:2]
    return [array[r * h // grid:(r + 1) * h // grid, c * w // grid:(c + 1) * w // grid]
            for r in range(grid) for c in range(grid)]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


class ColorStructureEmbedder:
    """Model-free fallback embedder (weak): Lab colour layout + HOG-lite + perceptual hash."""

    name = "color-structure (weak, model-free)"
    weak = True

    def __init__(self, size: int = 64, grid: int = 4, weights: tuple[float, float, float] = (0.5, 0.3, 0.2)):
        self.size, self.grid = size, grid
        total = sum(weights)
        self.weights = tuple(np.sqrt(w / total) for w in weights)
        self._dct = _dct_matrix(32)

    def _colour(self, lab: np.ndarray) -> np.ndarray:
        # 4 lightness × 4 × 4 chroma bins per cell; a/b bins span the usual illustration gamut.
        bins = (np.array([0, 25, 50, 75, 101]), np.array([-128, -20, 0, 20, 128]), np.array([-128, -20, 0, 20, 128]))
        parts = []
        for cell in _cells(lab, self.grid):
            hist, _ = np.histogramdd(cell.reshape(-1, 3), bins=bins)
            parts.append(_unit(np.sqrt(hist.ravel())))
        return _unit(np.concatenate(parts))

    def _gradients(self, grey: np.ndarray) -> np.ndarray:
        gy, gx = np.gradient(grey)
        magnitude = np.hypot(gx, gy)
        angle = (np.arctan2(gy, gx) % np.pi) / np.pi * 8  # unsigned orientation, 8 bins
        parts = []
        for mag, ang in zip(_cells(magnitude, self.grid), _cells(angle, self.grid)):
            hist = np.bincount(np.minimum(ang.astype(int), 7).ravel(), weights=mag.ravel(), minlength=8)
            parts.append(np.sqrt(hist))
        return _unit(np.concatenate(parts) + 1e-6)  # a flat image still has a defined direction

    def _phash(self, grey: np.ndarray) -> np.ndarray:
        small = np.asarray(Image.fromarray((grey * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR),
                           dtype=np.float32)
        coeffs = (self._dct @ small @ self._dct.T)[:8, :8].ravel()[1:]  # drop the DC term
        return _unit(np.where(coeffs > np.median(coeffs), 1.0, -1.0))

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            rgb = _rgb(image, self.size)
            grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            parts = (self._colour(rgb_to_lab(rgb)), self._gradients(grey), self._phash(grey))
            rows.append(np.concatenate([w * p for w, p in zip(self.weights, parts)]))
        return l2_normalise(np.stack(rows)) if rows else np.zeros((0, 0), dtype=np.float32)


class ClipEmbedder:
    """CLIP image embeddings from a local folder saved with `save_pretrained` (no network)."""

    weak = False

    def __init__(self, model_dir: str | Path, device: str = "cpu", batch_size: int = 16):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise UserError(f"{model_dir} is not a CLIP model folder (no config.json); point "
                            f"{CLIP_ENV} at a folder saved with CLIPModel.save_pretrained, or unset it")
        from transformers import CLIPImageProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(model_dir, local_files_only=True).to(device).eval()
        self.processor = CLIPImageProcessor.from_pretrained(model_dir, local_files_only=True)
        self.device, self.batch_size = device, batch_size
        self.name = f"clip ({model_dir.name})"

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        rows = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start:start + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.no_grad():
                features = self.model.get_image_features(pixel_values=pixels)
            features = getattr(features, "pooler_output", features)  # newer transformers wrap it
            rows.append(features.float().cpu().numpy())
        return l2_normalise(np.concatenate(rows)) if rows else np.zeros((0, 0), dtype=np.float32)


def default_embedder(clip_model: str | Path | None = None) -> ImageEmbedder:
    """CLIP when a local model is configured (argument, then $LORASTRAP_CLIP_MODEL), else the weak fallback."""
    path = clip_model or os.environ.get(CLIP_ENV)
    return ClipEmbedder(path) if path else ColorStructureEmbedder()
