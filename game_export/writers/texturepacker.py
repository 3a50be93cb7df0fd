"""TexturePacker "JSON (Hash)" data with Aseprite-style `frameTags` for the animations.

One JSON file per page (TexturePacker's multipack convention; `meta.related_multi_packs` names
the others). `pivot` is always written (fractions of `sourceSize`, y down), as are `trimmed`,
`sourceSize` and `spriteSourceSize`, so loaders can restore the untrimmed frame.
"""

from __future__ import annotations

import json

from game_export.sheet import Sheet

APP = "lorastrap"


def json_name(page_file: str) -> str:
    return page_file.rsplit(".", 1)[0] + ".json"


def _frame_tags(sheet: Sheet, names: list[str]) -> list[dict]:
    """Aseprite frame tags: contiguous runs of an animation among this page's frames."""
    animation_of = {f.name: f.animation for f in sheet.frames}
    tags: list[dict] = []
    for index, name in enumerate(names):
        anim = animation_of[name]
        if tags and tags[-1]["name"] == anim and tags[-1]["to"] == index - 1:
            tags[-1]["to"] = index
        else:
            tags.append({"name": anim, "from": index, "to": index, "direction": "forward"})
    return tags


def texturepacker_json(sheet: Sheet, page_index: int) -> str:
    page = sheet.pages[page_index]
    fps = {a.name: a.fps for a in sheet.animations}
    frames = sheet.frames_on(page_index)
    data_frames: dict[str, dict] = {}
    for frame in frames:
        data_frames[frame.name] = {
            "frame": {"x": frame.x, "y": frame.y, "w": frame.w, "h": frame.h},
            "rotated": False,
            "trimmed": frame.trimmed,
            "spriteSourceSize": {"x": frame.offset_x, "y": frame.offset_y, "w": frame.w, "h": frame.h},
            "sourceSize": {"w": frame.source_w, "h": frame.source_h},
            "pivot": {"x": sheet.pivot[0], "y": sheet.pivot[1]},
            "duration": round(1000.0 / fps[frame.animation]),  # Aseprite: milliseconds
        }
    meta = {
        "app": APP,
        "version": "1.0",
        "image": page.file,
        "format": "RGBA8888",
        "size": {"w": page.width, "h": page.height},
        "scale": "1",
        "frameTags": _frame_tags(sheet, [f.name for f in frames]),
        "lorastrap": {
            "character": sheet.character,
            "packing": sheet.packing,
            "pixelArt": sheet.pixel_art,
            "loop": {a.name: a.loop for a in sheet.animations},
            "mirrored": [f.name for f in frames if f.mirrored],
        },
    }
    if len(sheet.pages) > 1:
        meta["related_multi_packs"] = [json_name(p.file) for i, p in enumerate(sheet.pages) if i != page_index]
    return json.dumps({"frames": data_frames, "meta": meta}, indent=2) + "\n"
