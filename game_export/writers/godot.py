"""Godot `SpriteFrames` resources: Godot 4 (`format=3`) and Godot 3 (`format=2`) text syntax.

One `ext_resource` texture per page, one `AtlasTexture` sub-resource per frame (`region` on the
page; `margin` restores the untrimmed frame so a tightly packed frame keeps its offset from the
pivot), and `animations` with name, speed (fps) and loop. Without a `res://` prefix the texture
path is relative to the .tres file, which both Godot versions resolve against the file's folder.
"""

from __future__ import annotations

from game_export.sheet import Sheet, SheetFrame


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def res_join(res_dir: str, *parts: str) -> str:
    """`res://` joined with path parts; the root `res://` keeps both of its slashes.

    (`"res://".rstrip("/")` would leave `res:`, and Godot does not load `res:/x.png`.)
    """
    base = res_dir if res_dir.endswith("/") else res_dir + "/"
    return base + "/".join(p.strip("/") for p in parts if p.strip("/"))


def texture_path(res_dir: str | None, file: str) -> str:
    """The `ext_resource` path of a page: under `res_dir`, else relative to the .tres."""
    if not res_dir:
        return file
    return res_join(res_dir, file)


def _number(value: float) -> str:
    return repr(float(value))


def _rect(values: tuple[int, int, int, int], godot3: bool) -> str:
    inner = ", ".join(str(v) for v in values)
    return f"Rect2( {inner} )" if godot3 else f"Rect2({inner})"


def _margin(frame: SheetFrame) -> tuple[int, int, int, int] | None:
    """Godot's AtlasTexture margin: position = offset in the full frame, size = pixels added."""
    if not frame.trimmed:
        return None
    return (frame.offset_x, frame.offset_y, frame.source_w - frame.w, frame.source_h - frame.h)


def godot_spriteframes(sheet: Sheet, res_dir: str | None = None, version: int = 4) -> str:
    """The text of a SpriteFrames .tres for Godot `version` 4 or 3."""
    if version not in (3, 4):
        raise ValueError("Godot version must be 3 or 4")
    godot3 = version == 3
    load_steps = len(sheet.pages) + len(sheet.frames) + 1
    fmt = 2 if godot3 else 3
    lines = [f'[gd_resource type="SpriteFrames" load_steps={load_steps} format={fmt}]', ""]

    ext_ids: list[str] = []
    for index, page in enumerate(sheet.pages):
        path = _quote(texture_path(res_dir, page.file))
        if godot3:
            ext_ids.append(str(index + 1))
            lines.append(f'[ext_resource path={path} type="Texture" id={index + 1}]')
        else:
            ext_ids.append(f"{index + 1}_page{index}")
            lines.append(f'[ext_resource type="Texture2D" path={path} id="{ext_ids[-1]}"]')
    lines.append("")

    sub_ids: dict[str, str] = {}
    for index, frame in enumerate(sheet.frames):
        sub_ids[frame.name] = str(index + 1) if godot3 else f"AtlasTexture_{frame.name}"
        header_id = sub_ids[frame.name] if godot3 else _quote(sub_ids[frame.name])
        ext = f"ExtResource( {ext_ids[frame.page]} )" if godot3 else f'ExtResource("{ext_ids[frame.page]}")'
        lines += [f'[sub_resource type="AtlasTexture" id={header_id}]',
                  f"atlas = {ext}",
                  f"region = {_rect((frame.x, frame.y, frame.w, frame.h), godot3)}"]
        margin = _margin(frame)
        if margin is not None:
            lines.append(f"margin = {_rect(margin, godot3)}")
        # Keeps linear filtering from sampling neighbouring frames on the page.
        lines += ["filter_clip = true", ""]

    lines.append("[resource]")
    lines.append("animations = " + (_animations3(sheet, sub_ids) if godot3 else _animations4(sheet, sub_ids)))
    return "\n".join(lines) + "\n"


def _animations4(sheet: Sheet, sub_ids: dict[str, str]) -> str:
    blocks = []
    for anim in sheet.animations:
        frames = ", ".join(
            '{\n"duration": 1.0,\n"texture": SubResource(%s)\n}' % _quote(sub_ids[name]) for name in anim.frames)
        blocks.append("{\n"
                      f'"frames": [{frames}],\n'
                      f'"loop": {"true" if anim.loop else "false"},\n'
                      f'"name": &{_quote(anim.name)},\n'
                      f'"speed": {_number(anim.fps)}\n'
                      "}")
    return "[" + ", ".join(blocks) + "]"


def _animations3(sheet: Sheet, sub_ids: dict[str, str]) -> str:
    blocks = []
    for anim in sheet.animations:
        frames = ", ".join(f"SubResource( {sub_ids[name]} )" for name in anim.frames)
        blocks.append("{\n"
                      f'"frames": [ {frames} ],\n'
                      f'"loop": {"true" if anim.loop else "false"},\n'
                      f'"name": {_quote(anim.name)},\n'
                      f'"speed": {_number(anim.fps)}\n'
                      "}")
    return "[ " + ", ".join(blocks) + " ]"
