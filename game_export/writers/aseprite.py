"""Aseprite-style JSON as Phaser's `load.aseprite` + `anims.createFromAseprite` read it.

`<page>.aseprite.json`, one per page, beside the TexturePacker hash file (which keys frames by
name for PixiJS and Phaser's `load.atlas`). One file cannot serve both: `createFromAseprite`
looks each tag's frames up by index — `frames[String(i)]` for i in from..to — which is what
Aseprite writes with the item filename `{frame}`; frames keyed by name give animations with no
frames. So here the frames are keyed "0", "1", … in animation order (each animation one
contiguous run), `meta.frameTags` index them, and `meta.lorastrap.names[i]` is frame i's name.
Per frame Phaser reads `frame`, `trimmed`/`sourceSize`/`spriteSourceSize`, `rotated`,
`anchor || pivot` (atlas parser JSONHash) and `duration` in ms (the tag's frame rate).
"""

from __future__ import annotations

import json

from game_export.sheet import Sheet
from game_export.writers.texturepacker import frame_entry, page_meta


def aseprite_name(page_file: str) -> str:
    return page_file.rsplit(".", 1)[0] + ".aseprite.json"


def aseprite_json(sheet: Sheet, page_index: int) -> str:
    index = sheet.frame_index()
    here = {f.name for f in sheet.frames_on(page_index)}
    frames: dict[str, dict] = {}
    names: list[str] = []
    tags: list[dict] = []
    for anim in sheet.animations:
        run = [n for n in anim.frames if n in here]
        if not run:
            continue
        tags.append({"name": anim.name, "from": len(names), "to": len(names) + len(run) - 1,
                     "direction": "forward"})
        for name in run:
            frames[str(len(names))] = frame_entry(sheet, index[name], anim.fps)
            names.append(name)
    meta = page_meta(sheet, page_index)
    meta["frameTags"] = tags
    meta["lorastrap"]["names"] = names
    return json.dumps({"frames": frames, "meta": meta}, indent=2) + "\n"
