"""The finished sprite sheet as data: pages, frame rectangles, animations. Writers read only this.

Coordinates are pixels with the origin at the page's top-left, y down (PNG order); writers for
engines with another convention (Unity: bottom-left) convert.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    file: str  # PNG file name, relative to the engine folder
    width: int
    height: int


@dataclass(frozen=True)
class SheetFrame:
    name: str
    animation: str
    page: int
    x: int  # the frame's region on its page
    y: int
    w: int
    h: int
    source_w: int  # the logical (untrimmed) frame: the common cell
    source_h: int
    offset_x: int  # where the region sits inside the logical frame
    offset_y: int
    source: str = ""  # the image it was made from
    view: str | None = None
    direction: str | None = None
    mirrored: bool = False

    @property
    def trimmed(self) -> bool:
        return (self.w, self.h) != (self.source_w, self.source_h)


@dataclass(frozen=True)
class Animation:
    name: str
    frames: tuple[str, ...]
    fps: float
    loop: bool


@dataclass(frozen=True)
class Sheet:
    character: str
    pages: tuple[Page, ...]
    frames: tuple[SheetFrame, ...]
    animations: tuple[Animation, ...]
    pivot: tuple[float, float]  # fractions of the logical frame, y down; (0.5, 1.0) = bottom centre
    pixel_art: bool = False
    packing: str = "grid"

    def frames_on(self, page: int) -> list[SheetFrame]:
        return [f for f in self.frames if f.page == page]

    def frame_index(self) -> dict[str, SheetFrame]:
        return {f.name: f for f in self.frames}

    def pivot_in_region(self, frame: SheetFrame) -> tuple[float, float]:
        """The pivot as fractions of the frame's region (y down); outside [0, 1] when trimmed."""
        px = self.pivot[0] * frame.source_w - frame.offset_x
        py = self.pivot[1] * frame.source_h - frame.offset_y
        return px / frame.w, py / frame.h
