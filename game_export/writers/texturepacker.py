"""TexturePacker "JSON (Hash)" data as PixiJS 8 and Phaser 3/4 read it (`<page>.json`).

One JSON file per page (TexturePacker's multipack convention; `meta.related_multi_packs` names
the others). What the consumers read, checked in their source and by running them in the suite
(tests/game_export/test_export_web_engines.py):
- PixiJS 8 `Spritesheet.parse`: `frame`, `rotated`, `trimmed`, `sourceSize`, `spriteSourceSize`,
  `anchor` (the default anchor of the frame's texture; Pixi ignores `pivot`) and the top-level
  `animations` map (animation → frame names); `meta.scale` sets the resolution.
- Phaser `load.atlas` (parser `JSONHash`): `frame`, `trimmed` + `sourceSize`/`spriteSourceSize`,
  `rotated`, and `anchor || pivot` as the frame's custom pivot. Phaser builds no animations from
  this file; the Aseprite file (writers/aseprite.py) carries them for `load.aseprite`.
`anchor` and `pivot` are the same point: fractions of `sourceSize`, y down.
"""

from __future__ import annotations

import json

from game_export.sheet import Sheet, SheetFrame

APP = "lorastrap"


def json_name(page_file: str) -> str:
    return page_file.rsplit(".", 1)[0] + ".json"


def frame_entry(sheet: Sheet, frame: SheetFrame, fps: float) -> dict:
    """One frame as TexturePacker (and Aseprite) write it, plus the anchor/pivot."""
    point = {"x": sheet.pivot[0], "y": sheet.pivot[1]}
    return {
        "frame": {"x": frame.x, "y": frame.y, "w": frame.w, "h": frame.h},
        "rotated": False,
        "trimmed": frame.trimmed,
        "spriteSourceSize": {"x": frame.offset_x, "y": frame.offset_y, "w": frame.w, "h": frame.h},
        "sourceSize": {"w": frame.source_w, "h": frame.source_h},
        "anchor": dict(point),  # PixiJS
        "pivot": dict(point),  # TexturePacker's name; Phaser reads anchor || pivot
        "duration": round(1000.0 / fps),  # Aseprite: milliseconds
    }


def page_meta(sheet: Sheet, page_index: int) -> dict:
    """The `meta` block both JSON files share."""
    page = sheet.pages[page_index]
    return {
        "app": APP,
        "version": "1.0",
        "image": page.file,
        "format": "RGBA8888",
        "size": {"w": page.width, "h": page.height},
        "scale": "1",
        "lorastrap": {
            "character": sheet.character,
            "packing": sheet.packing,
            "pixelArt": sheet.pixel_art,
            "loop": {a.name: a.loop for a in sheet.animations},
            "fps": {a.name: a.fps for a in sheet.animations},
            "mirrored": [f.name for f in sheet.frames_on(page_index) if f.mirrored],
        },
    }


def split_animations(sheet: Sheet) -> list[str]:
    """Animations whose frames lie on more than one page (each page's JSON has only its part)."""
    pages: dict[str, set[int]] = {}
    for frame in sheet.frames:
        pages.setdefault(frame.animation, set()).add(frame.page)
    return [name for name, on in pages.items() if len(on) > 1]


def texturepacker_json(sheet: Sheet, page_index: int) -> str:
    fps = {a.name: a.fps for a in sheet.animations}
    frames = sheet.frames_on(page_index)
    here = {f.name for f in frames}
    data = {
        "frames": {f.name: frame_entry(sheet, f, fps[f.animation]) for f in frames},
        # PixiJS: Spritesheet.animations[name] = textures of these frames, in this order.
        "animations": {a.name: [n for n in a.frames if n in here]
                       for a in sheet.animations if any(n in here for n in a.frames)},
        "meta": page_meta(sheet, page_index),
    }
    if len(sheet.pages) > 1:
        data["meta"]["related_multi_packs"] = [json_name(p.file) for i, p in enumerate(sheet.pages)
                                               if i != page_index]
    return json.dumps(data, indent=2) + "\n"
