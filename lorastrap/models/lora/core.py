"""The parsed form of a LoRA file: canonical modules (names.py keys) with their factors and alpha."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lorastrap.kernel.errors import UserError


class LoraFormatError(UserError):
    """The file is not a LoRA lorastrap can use (format, names, values, architecture)."""


@dataclass(frozen=True)
class LoraModule:
    """One LoRA pair: ΔW = (alpha / rank) · up @ down (conv kernels flattened to matrices)."""

    key: str
    down: torch.Tensor  # [rank, in] or [rank, in, kh, kw]
    up: torch.Tensor  # [out, rank] or [out, rank, 1, 1]
    alpha: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def out_features(self) -> int:
        return int(self.up.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.down[0].numel())

    def down_matrix(self) -> torch.Tensor:
        return self.down.reshape(self.rank, -1).to(torch.float64)

    def up_matrix(self) -> torch.Tensor:
        return self.up.reshape(self.out_features, -1).to(torch.float64)

    def delta(self) -> torch.Tensor:
        """The dense ΔW as a float64 [out, in·kh·kw] matrix (only for small modules and tests)."""
        return self.scale * self.up_matrix() @ self.down_matrix()


@dataclass
class LoraFile:
    """A parsed LoRA: canonical modules plus what was learnt about the file on the way."""

    modules: dict[str, LoraModule]
    arch: str | None  # sd15 | sd2 | sdxl, or None when nothing in the file tells
    key_format: str  # "kohya" | "diffusers"
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    source_keys: tuple[str, ...] = ()  # the tensor names as stored in the file
    unknown: list[str] = field(default_factory=list)  # tensor names that name no known module
    unet_names: str = "diffusers"  # how the file named UNet modules: "diffusers" | "sgm"

    def shape_signature(self) -> dict[str, tuple[int, int]]:
        return {k: (m.out_features, m.in_features) for k, m in self.modules.items()}

    @property
    def name(self) -> str:
        return self.path.name if self.path else "LoRA"
