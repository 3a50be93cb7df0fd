"""Game export: background-removed sprite sheets for Godot 4/3, Unity and TexturePacker JSON.

Depends on pillow, numpy and rectpack only (rembg is imported lazily when asked for), and of the
project on `lorastrap.kernel` alone (atomic writes, image decoding, PNG files). Entry point: `export_sprites(ExportRequest(...))`.
"""

from game_export.errors import ExportError
from game_export.frames import FrameSpec, frames_from_folder, frames_from_globs
from game_export.pipeline import export_sprites
from game_export.request import ENGINES, ExportRequest, ExportResult

__all__ = ["ENGINES", "ExportError", "ExportRequest", "ExportResult", "FrameSpec", "export_sprites",
           "frames_from_folder", "frames_from_globs"]
