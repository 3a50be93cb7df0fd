"""What an export is asked to do (ExportRequest) and what it did (ExportResult)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from game_export.alpha import AlphaCleanup
from game_export.background import Remover
from game_export.errors import ExportError
from game_export.frames import FrameSpec
from game_export.sheet import Sheet

ENGINES = ("godot4", "godot3", "unity", "json")
PACKINGS = ("grid", "tight")


@dataclass
class ExportRequest:
    frames: list[FrameSpec]
    character: str  # also seeds the Unity GUIDs: keep it stable between exports
    out_dir: Path
    engines: frozenset[str] = frozenset({"godot4"})
    godot_res: str | None = None  # e.g. "res://sprites/hero"; None: paths relative to the .tres
    size: int | None = None  # target character height in px; None keeps the source scale
    pixel_art: bool = False
    palette: int | None = None  # colours of the shared palette (pixel art only)
    # flood[:TOL] | none | rembg:MODEL | rembg:/path/model.onnx, or a ready Remover object
    remover: str | Remover = "flood"
    cleanup: AlphaCleanup = field(default_factory=AlphaCleanup)
    pack: str = "grid"
    padding: int = 2
    extrude: int = 1
    max_texture_size: int = 4096
    power_of_two: bool = False
    pivot: tuple[float, float] = (0.5, 1.0)  # fractions of the frame, y down: bottom centre
    fps: float = 8.0
    loop: bool = True
    directions: bool = False  # one animation per direction row, from the frames' view tags
    mirror_side: bool = False  # make the missing other side by mirroring (flagged in the output)
    pixels_per_unit: float = 100.0  # Unity
    preview: bool = True
    progress: Callable[[int, int], None] | None = None  # (frames done, total)

    def validate(self) -> None:
        if not self.frames:
            raise ExportError("no frames selected: curate images first, or pass --from DIR "
                              "or --animation NAME=GLOB")
        unknown = set(self.engines) - set(ENGINES)
        if unknown or not self.engines:
            raise ExportError(f"unknown engine {', '.join(sorted(unknown)) or '(none)'}; "
                              f"use {', '.join(ENGINES)} or all")
        if self.pack not in PACKINGS:
            raise ExportError(f"--pack {self.pack} is not one of {', '.join(PACKINGS)}")
        if not (0 <= self.padding <= 256 and 0 <= self.extrude <= 64):
            raise ExportError("--padding must be 0..256 and --extrude 0..64 pixels")
        if not 16 <= self.max_texture_size <= 16384:
            raise ExportError(f"--max-texture-size {self.max_texture_size} must be within 16..16384")
        if self.size is not None and not 1 <= self.size <= 16384:
            raise ExportError(f"--size {self.size} must be a height of 1..16384 pixels")
        if self.palette is not None and not 2 <= self.palette <= 256:
            raise ExportError(f"--palette {self.palette} must be between 2 and 256 colours")
        if not (math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ExportError(f"--fps {self.fps} must be a number in (0, 240]")
        if not (math.isfinite(self.pixels_per_unit) and self.pixels_per_unit > 0):
            raise ExportError(f"--ppu {self.pixels_per_unit} must be a positive number")
        if self.godot_res and not self.godot_res.startswith("res://"):
            raise ExportError(f"--godot-res {self.godot_res!r} must start with res://")


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path]  # every file written, absolute
    sheet: Sheet
    remover: str
    remover_loads: int  # model loads during this export (1 for rembg, 0 for flood)
    efficiency: float  # frame area / page area
    warnings: list[str] = field(default_factory=list)
    preview: Path | None = None
    manifest: Path | None = None

    def frame_records(self) -> list[dict]:
        """One JSON-able row per frame (for the registry's export record)."""
        return [{"name": f.name, "animation": f.animation, "source": f.source, "view": f.view,
                 "direction": f.direction, "mirrored": f.mirrored, "page": f.page,
                 "rect": [f.x, f.y, f.w, f.h]} for f in self.sheet.frames]
