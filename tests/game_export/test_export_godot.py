"""Godot SpriteFrames .tres (format 3 and 2), read back with a real parser of Godot's text syntax.

The parser below implements Godot's resource text grammar (section headers, `key = value`
properties, strings, StringNames, numbers, arrays, dictionaries, constructor calls); it does not
know our templates, so a syntax slip in the writer fails here. Godot 3 itself loads the files in
test_export_godot_engine.py; Godot 4 cannot run here, so its rules are checked as its source
states them (godotengine/godot, scene/resources/resource_format_text.cpp and sprite_frames.cpp):
- `[gd_resource]` needs `type`; `format` must not exceed the loader's version (4); `load_steps`
  is optional (a progress hint).
- `[ext_resource]` needs `path`, `type` and `id`; a path without "://" that is relative (no
  leading "/" and no ":/") is joined to the .tres file's folder; anything else is used as is, so
  "res:/x.png" is an absolute path that is not in the project.
- `[sub_resource]` needs `type` and `id` and must come before it is referenced.
- `SpriteFrames._set_animations`: each animation needs "name", "speed", "loop" and "frames"
  (others are skipped); each frame is a dictionary with "texture" and "duration".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from game_export import ExportRequest, export_sprites
from game_export.synthetic import animation_frames


class StringName(str):
    pass


@dataclass
class Call:
    name: str
    args: list


@dataclass
class Section:
    tag: str
    attrs: dict
    props: dict = field(default_factory=dict)


class TresParser:
    _NUMBER = re.compile(r"-?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+|inf|nan)")
    _IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_/]*")

    def __init__(self, text: str):
        self.s, self.i = text, 0

    def error(self, what: str):
        line = self.s.count("\n", 0, self.i) + 1
        raise SyntaxError(f"{what} at line {line}: {self.s[self.i:self.i + 30]!r}")

    def ws(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == ";":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def expect(self, char: str):
        self.ws()
        if not self.s.startswith(char, self.i):
            self.error(f"expected {char!r}")
        self.i += len(char)

    def ident(self) -> str:
        self.ws()
        m = self._IDENT.match(self.s, self.i)
        if not m:
            self.error("expected identifier")
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        self.expect('"')
        out = []
        while True:
            if self.i >= len(self.s):
                self.error("unterminated string")
            c = self.s[self.i]
            self.i += 1
            if c == '"':
                return "".join(out)
            if c == "\\":
                out.append({"n": "\n", "t": "\t"}.get(self.s[self.i], self.s[self.i]))
                self.i += 1
            else:
                out.append(c)

    def value(self):
        self.ws()
        c = self.s[self.i]
        if c == '"':
            return self.string()
        if c == "&":
            self.i += 1
            return StringName(self.string())
        if c == "[":
            return self.sequence("[", "]", self.value)
        if c == "{":
            items = self.sequence("{", "}", self.pair)
            return dict(items)
        m = self._NUMBER.match(self.s, self.i)
        if m and (c.isdigit() or c in "-."):
            self.i = m.end()
            text = m.group()
            return float(text) if any(ch in text for ch in ".en") else int(text)
        name = self.ident()
        if name in ("true", "false"):
            return name == "true"
        if name == "null":
            return None
        self.ws()
        if self.s.startswith("(", self.i):
            return Call(name, self.sequence("(", ")", self.value))
        self.error(f"bare identifier {name}")

    def pair(self):
        key = self.value()
        self.expect(":")
        return key, self.value()

    def sequence(self, open_, close, item):
        self.expect(open_)
        out = []
        self.ws()
        if self.s.startswith(close, self.i):
            self.i += 1
            return out
        while True:
            out.append(item())
            self.ws()
            if self.s.startswith(close, self.i):
                self.i += 1
                return out
            self.expect(",")

    def parse(self) -> list[Section]:
        sections: list[Section] = []
        while True:
            self.ws()
            if self.i >= len(self.s):
                return sections
            if self.s[self.i] == "[":
                self.i += 1
                tag, attrs = self.ident(), {}
                while True:
                    self.ws()
                    if self.s.startswith("]", self.i):
                        self.i += 1
                        break
                    key = self.ident()
                    self.expect("=")
                    attrs[key] = self.value()
                sections.append(Section(tag, attrs))
            else:
                if not sections:
                    self.error("property before any section")
                key = self.ident()
                self.expect("=")
                sections[-1].props[key] = self.value()


def _frames(tmp_path: Path):
    return animation_frames(tmp_path, {"idle": 2, "walk": 5})


def _load(tres: Path):
    sections = TresParser(tres.read_text()).parse()
    head = sections[0]
    assert head.tag == "gd_resource" and head.attrs["type"] == "SpriteFrames"
    ext = {s.attrs["id"]: s for s in sections if s.tag == "ext_resource"}
    sub = {s.attrs["id"]: s for s in sections if s.tag == "sub_resource"}
    resource = [s for s in sections if s.tag == "resource"]
    assert len(resource) == 1
    assert head.attrs["load_steps"] == len(ext) + len(sub) + 1
    return head, ext, sub, resource[0].props["animations"]


def _texture_file(tres: Path, path: str, res_root: Path | None) -> Path:
    if path.startswith("res://"):
        return res_root / path[len("res://"):]
    return tres.parent / path


@pytest.mark.parametrize("engine,fmt", [("godot4", 3), ("godot3", 2)])
@pytest.mark.parametrize("pack", ["grid", "tight"])
def test_spriteframes_parse_and_regions_fit(tmp_path, engine, fmt, pack):
    project = tmp_path / "project"
    out = project / "sprites" / "hero"
    result = export_sprites(ExportRequest(frames=_frames(tmp_path), character="hero", out_dir=out,
                                          engines=frozenset({engine}), godot_res="res://sprites/hero",
                                          pack=pack, fps=12, loop=False, max_texture_size=128))
    tres = out / "hero.tres"
    head, ext, sub, animations = _load(tres)
    assert head.attrs["format"] == fmt
    assert len(ext) == len(result.sheet.pages) >= 2  # 128 px pages force several textures
    sizes = {}
    for ext_id, section in ext.items():
        assert section.attrs["type"] == ("Texture2D" if fmt == 3 else "Texture")
        sizes[ext_id] = Image.open(_texture_file(tres, section.attrs["path"], project)).size
    for section in sub.values():
        assert section.attrs["type"] == "AtlasTexture"
        atlas = section.props["atlas"]
        assert isinstance(atlas, Call) and atlas.name == "ExtResource"
        w, h = sizes[atlas.args[0]]
        x, y, rw, rh = section.props["region"].args
        assert section.props["region"].name == "Rect2"
        assert 0 <= x and 0 <= y and x + rw <= w and y + rh <= h and rw > 0 and rh > 0
        if pack == "tight" and "margin" in section.props:
            mx, my, mw, mh = section.props["margin"].args
            assert rw + mw == result.sheet.frames[0].source_w and rh + mh == result.sheet.frames[0].source_h
    assert [a["name"] for a in animations] == ["idle", "walk"]
    if fmt == 3:
        assert all(isinstance(a["name"], StringName) for a in animations)
    counts = []
    for anim in animations:
        assert anim["speed"] == 12.0 and anim["loop"] is False
        refs = [f["texture"] if fmt == 3 else f for f in anim["frames"]]
        assert all(isinstance(r, Call) and r.name == "SubResource" and r.args[0] in sub for r in refs)
        if fmt == 3:
            assert all(f["duration"] == 1.0 for f in anim["frames"])
        counts.append(len(refs))
    assert counts == [2, 5]


def test_relative_texture_paths_without_godot_res(tmp_path):
    result = export_sprites(ExportRequest(frames=_frames(tmp_path)[:2], character="hero",
                                          out_dir=tmp_path / "o", engines=frozenset({"godot4"})))
    _, ext, _, _ = _load(tmp_path / "o" / "hero.tres")
    (only,) = ext.values()
    assert only.attrs["path"] == result.sheet.pages[0].file
    assert (tmp_path / "o" / only.attrs["path"]).is_file()


def test_parser_rejects_broken_syntax():
    with pytest.raises(SyntaxError):
        TresParser('[resource]\nanimations = [{"name": &"a", }').parse()


def _godot4_resolve(project: Path, tres: Path, path: str) -> Path | None:
    """Where Godot 4's text loader looks for an ext_resource path (resource_format_text.cpp)."""
    if "://" in path:
        return project / path[len("res://"):] if path.startswith("res://") else None
    if path.startswith(("/", "\\")) or ":/" in path or ":\\" in path:
        return None  # absolute: not relative to the .tres, and not a res:// path
    return tres.parent / path


@pytest.mark.parametrize("out,godot_res,engines,tres", [
    ("", "res://", {"godot4"}, "hero.tres"),
    ("rel", None, {"godot4"}, "rel/hero.tres"),
    ("sprites/hero", "res://sprites/hero/", {"godot4"}, "sprites/hero/hero.tres"),
    ("all", "res://all", {"godot4", "godot3", "unity", "json"}, "all/godot4/hero.tres"),
])
def test_godot4_finds_every_texture_by_its_loader_rules(tmp_path, out, godot_res, engines, tres):
    project = tmp_path / "project"
    result = export_sprites(ExportRequest(frames=_frames(tmp_path)[:3], character="hero",
                                          out_dir=project / out, engines=frozenset(engines),
                                          godot_res=godot_res, max_texture_size=128))
    head, ext, sub, animations = _load(project / tres)
    assert head.attrs["format"] == 3 and head.attrs["type"] == "SpriteFrames"
    assert [s.attrs["path"] for s in ext.values()] and all({"path", "type", "id"} <= set(s.attrs)
                                                           for s in ext.values())
    found = [_godot4_resolve(project, project / tres, s.attrs["path"]) for s in ext.values()]
    expected = [(project / tres).parent / p.file for p in result.sheet.pages]
    assert found == expected and all(p.is_file() for p in found)
    for anim in animations:
        assert {"name", "speed", "loop", "frames"} <= set(anim)
        assert all(set(f) == {"texture", "duration"} for f in anim["frames"])


def test_the_res_root_is_not_written_as_an_absolute_path():
    from game_export.writers.godot import texture_path
    assert texture_path("res://", "a.png") == "res://a.png"
    assert texture_path("res://x/y/", "a.png") == texture_path("res://x/y", "a.png") == "res://x/y/a.png"
    assert _godot4_resolve(Path("/p"), Path("/p/a.tres"), "res:/a.png") is None  # the old bug
