"""Unity .png.meta parsed as YAML: rects, the flipped y axis, pivots, the structure Unity writes,
GUIDs unique per place and ids kept on re-export (read from the .meta already in the folder)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from game_export import ExportError, ExportRequest, FrameSpec, export_sprites
from game_export.synthetic import Figure, draw_frame, save_frame

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 220), (220, 200, 30), (200, 40, 200), (30, 200, 200)]


def _frames(tmp_path: Path) -> list[FrameSpec]:
    specs = []
    for i, colour in enumerate(COLOURS):
        # Heights differ so the frames are not interchangeable.
        image, _ = draw_frame((100, 140), Figure(x=30, y=10 + 4 * i, height=120 - 4 * i, colour=colour))
        specs.append(FrameSpec(save_frame(image, tmp_path / f"run_{i}.png"), "run"))
    return specs


def _export(tmp_path, character="hero", out="out", **kw):
    return export_sprites(ExportRequest(frames=_frames(tmp_path), character=character,
                                        out_dir=tmp_path / out, engines=frozenset({"unity"}), **kw))


def _meta(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _head_colour(region: np.ndarray) -> tuple[int, int, int]:
    """Colour of the topmost opaque row's middle pixel (the head carries the frame's colour)."""
    rows = np.nonzero(region[..., 3].max(axis=1) == 255)[0]
    row = region[rows.min() + 2]
    xs = np.nonzero(row[..., 3] == 255)[0]
    return tuple(int(v) for v in row[xs[len(xs) // 2], :3])


@pytest.mark.parametrize("pack", ["grid", "tight"])
def test_meta_rects_are_bottom_left_and_inside_the_texture(tmp_path, pack):
    result = _export(tmp_path, pack=pack, max_texture_size=256, pixels_per_unit=32)
    for page in result.sheet.pages:
        meta = _meta(result.out_dir / f"{page.file}.meta")
        png = np.asarray(Image.open(result.out_dir / page.file))
        height, width = png.shape[:2]
        importer = meta["TextureImporter"]
        assert meta["fileFormatVersion"] == 2 and len(meta["guid"]) == 32
        assert importer["spriteMode"] == 2 and importer["textureType"] == 8
        assert importer["spritePixelsToUnits"] == 32 and importer["textureSettings"]["filterMode"] == 1
        assert importer["maxTextureSize"] >= max(width, height) and importer["nPOTScale"] == 0
        sprites = importer["spriteSheet"]["sprites"]
        assert sprites
        for sprite in sprites:
            r = sprite["rect"]
            x, y, w, h = r["x"], r["y"], r["width"], r["height"]
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
            top = height - (y + h)  # Unity y is measured from the bottom
            region = png[top:top + h, x:x + w]
            index = int(sprite["name"].rsplit("_", 1)[1])
            assert _head_colour(region) == COLOURS[index]
            px, py = sprite["pivot"]["x"], sprite["pivot"]["y"]
            # The pivot (bottom centre of the character) sits on the feet row.
            feet = np.nonzero(region[..., 3].max(axis=1) > 127)[0].max()
            assert abs((h - py * h) - (feet + 1)) < 1e-6
            if pack == "grid":
                assert (px, py) == (0.5, 0.0) and sprite["alignment"] == 7
            else:
                assert sprite["alignment"] in (7, 9)
        table = importer["spriteSheet"]["nameFileIdTable"]
        assert table == {s["name"]: s["internalID"] for s in sprites}
        assert len({s["spriteID"] for s in sprites}) == len(sprites)


def _ids(meta: dict) -> dict[str, tuple[int, str]]:
    sprites = meta["TextureImporter"]["spriteSheet"]["sprites"]
    return {s["name"]: (s["internalID"], str(s["spriteID"])) for s in sprites}  # YAML may read digits as int


def test_two_places_get_two_guids_and_a_reexport_keeps_every_id(tmp_path):
    first = _export(tmp_path, out="a")
    other = _export(tmp_path, out="b")  # same character, another folder: maybe the same project
    meta_a = first.out_dir / "hero.png.meta"
    meta_b = other.out_dir / "hero.png.meta"
    assert _meta(meta_a)["guid"] != _meta(meta_b)["guid"]
    ids = _ids(_meta(meta_a))
    assert len({i for i, _ in ids.values()}) == 6 and 0 not in {i for i, _ in ids.values()}
    assert all(len(sid) == 32 for _, sid in ids.values()) and len({s for _, s in ids.values()}) == 6
    before = meta_a.read_text()
    _export(tmp_path, out="a")
    assert meta_a.read_text() == before  # re-export into the same folder: every id kept

    # The meta is read from the target folder before writing, also when the frame set changes.
    # Frame names are positional (run_00, run_01, …): a retrain with 5 frames keeps the GUID and
    # the ids of run_00..run_04; one with 7 gives run_06 a new id (and run_05 its old one back,
    # since a fresh id is derived from the GUID and the name).
    def reexport(specs):
        export_sprites(ExportRequest(frames=specs, character="hero", out_dir=tmp_path / "a",
                                     engines=frozenset({"unity"}), pixels_per_unit=16))
        meta = _meta(meta_a)
        assert meta["guid"] == yaml.safe_load(before)["guid"]
        assert meta["TextureImporter"]["spritePixelsToUnits"] == 16  # settings follow the options
        return _ids(meta)

    fewer = reexport(_frames(tmp_path)[1:])
    assert fewer == {name: ids[name] for name in [f"run_{i:02d}" for i in range(5)]}
    image, _ = draw_frame((100, 140), Figure(x=30, y=10, height=100, colour=(90, 90, 90)))
    extra = FrameSpec(save_frame(image, tmp_path / "run_6.png"), "run")
    more = reexport(_frames(tmp_path) + [extra])
    assert {name: more[name] for name in ids} == ids
    assert more["run_06"][0] not in {i for i, _ in ids.values()}
    assert more["run_06"][1] not in {s for _, s in ids.values()}


# A .meta as Unity re-saves it (layout of the Unity 6 metas cited below): legacy sprite ids
# (21300000 + 2n, spriteIDs like Unity's "…0800000000000000"), quoted scalars, more sprites.
UNITY_SAVED = """fileFormatVersion: 2
guid: 195d2ebbbf668124ab3fa9932a849bcb
TextureImporter:
  internalIDToNameTable:
  - first:
      213: 21300000
    second: run_00
  externalObjects: {}
  serializedVersion: 13
  spriteMode: 2
  spriteSheet:
    serializedVersion: 2
    sprites:
%s    outline: []
    spriteID: 
    internalID: 0
    nameFileIdTable:
      run_00: 21300000
  userData: 
"""
UNITY_SPRITE = """    - serializedVersion: 2
      name: %s
      rect:
        serializedVersion: 2
        x: 0
        y: 0
        width: 16
        height: 16
      alignment: 0
      pivot: {x: 0, y: 0}
      spriteID: %s
      internalID: %d
      vertices: []
"""


def test_reexport_keeps_the_ids_of_a_meta_unity_rewrote(tmp_path):
    names = ["run_00", "'run_01'", "run_02", "gone_09"]  # a quoted name, a sprite no longer exported
    sprites = "".join(UNITY_SPRITE % (n, f"{2 * i}2305410000000000800000000000000", 21300000 + 2 * i)
                      for i, n in enumerate(names))
    out = tmp_path / "out"
    out.mkdir()
    (out / "hero.png.meta").write_text(UNITY_SAVED % sprites)
    result = _export(tmp_path)
    meta = _meta(result.out_dir / "hero.png.meta")
    assert meta["guid"] == "195d2ebbbf668124ab3fa9932a849bcb"
    ids = _ids(meta)
    assert ids["run_00"] == (21300000, "02305410000000000800000000000000")
    assert ids["run_01"] == (21300002, "22305410000000000800000000000000")
    assert ids["run_02"] == (21300004, "42305410000000000800000000000000")
    assert "gone_09" not in ids and 21300006 not in {i for i, _ in ids.values()}
    assert len({i for i, _ in ids.values()}) == 6


def test_a_meta_without_a_guid_is_an_error_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hero.png.meta").write_text("not a unity meta\n")
    with pytest.raises(ExportError, match="no guid line") as err:
        _export(tmp_path)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["hero.png.meta"]


# The structure Unity itself writes for a Multiple-mode sprite sheet, key by key and in order, as in
# the Unity 6 (TextureImporter serializedVersion 13) metas Unity-Technologies/2d-techdemos
# Assets/Tilemap/Destructible/Sprites/explosion.png.meta and
# Assets/Tilemap/Brushes/Random Brush/Sprites/TemplePlants.png.meta (commit 8a8aad44):
UNITY_IMPORTER_KEYS = [
    "internalIDToNameTable", "externalObjects", "serializedVersion", "mipmaps", "bumpmap",
    "isReadable", "streamingMipmaps", "streamingMipmapsPriority", "vTOnly", "ignoreMipmapLimit",
    "grayScaleToAlpha", "generateCubemap", "cubemapConvolution", "seamlessCubemap", "textureFormat",
    "maxTextureSize", "textureSettings", "nPOTScale", "lightmap", "compressionQuality", "spriteMode",
    "spriteExtrude", "spriteMeshType", "alignment", "spritePivot", "spritePixelsToUnits",
    "spriteBorder", "spriteGenerateFallbackPhysicsShape", "alphaUsage", "alphaIsTransparency",
    "spriteTessellationDetail", "textureType", "textureShape", "singleChannelComponent",
    "flipbookRows", "flipbookColumns", "maxTextureSizeSet", "compressionQualitySet",
    "textureFormatSet", "ignorePngGamma", "applyGammaDecoding", "swizzle", "cookieLightType",
    "platformSettings", "spriteSheet", "mipmapLimitGroupName", "pSDRemoveMatte", "userData",
    "assetBundleName", "assetBundleVariant"]
UNITY_MIPMAPS_KEYS = ["mipMapMode", "enableMipMap", "sRGBTexture", "linearTexture", "fadeOut",
                      "borderMipMap", "mipMapsPreserveCoverage", "alphaTestReferenceValue",
                      "mipMapFadeDistanceStart", "mipMapFadeDistanceEnd"]
UNITY_BUMPMAP_KEYS = ["convertToNormalMap", "externalNormalMap", "heightScale", "normalMapFilter",
                      "flipGreenChannel"]
UNITY_TEXTURE_SETTINGS_KEYS = ["serializedVersion", "filterMode", "aniso", "mipBias", "wrapU",
                               "wrapV", "wrapW"]
UNITY_PLATFORM_KEYS = ["serializedVersion", "buildTarget", "maxTextureSize", "resizeAlgorithm",
                       "textureFormat", "textureCompression", "compressionQuality",
                       "crunchedCompression", "allowsAlphaSplitting", "overridden",
                       "ignorePlatformSupport", "androidETC2FallbackOverride",
                       "forceMaximumCompressionQuality_BC6H_BC7"]
UNITY_SPRITESHEET_KEYS = ["serializedVersion", "sprites", "outline", "customData", "physicsShape",
                          "bones", "spriteID", "internalID", "vertices", "indices", "edges",
                          "weights", "secondaryTextures", "spriteCustomMetadata", "nameFileIdTable"]
UNITY_SPRITE_KEYS = ["serializedVersion", "name", "rect", "alignment", "pivot", "border",
                     "customData", "outline", "physicsShape", "tessellationDetail", "bones",
                     "spriteID", "internalID", "vertices", "indices", "edges", "weights"]
UNITY_RECT_KEYS = ["serializedVersion", "x", "y", "width", "height"]


def test_meta_has_the_structure_unity_writes_for_sprite_sheets(tmp_path):
    result = _export(tmp_path)
    text = (result.out_dir / "hero.png.meta").read_text()
    meta = _meta(result.out_dir / "hero.png.meta")
    assert list(meta) == ["fileFormatVersion", "guid", "TextureImporter"]
    assert meta["fileFormatVersion"] == 2 and re.fullmatch(r"[0-9a-f]{32}", meta["guid"])
    importer = meta["TextureImporter"]
    assert list(importer) == UNITY_IMPORTER_KEYS
    assert importer["serializedVersion"] == 13
    assert list(importer["mipmaps"]) == UNITY_MIPMAPS_KEYS
    assert list(importer["bumpmap"]) == UNITY_BUMPMAP_KEYS
    assert list(importer["textureSettings"]) == UNITY_TEXTURE_SETTINGS_KEYS
    assert [list(p) for p in importer["platformSettings"]] == [UNITY_PLATFORM_KEYS]
    assert importer["platformSettings"][0]["buildTarget"] == "DefaultTexturePlatform"
    sheet = importer["spriteSheet"]
    assert list(sheet) == UNITY_SPRITESHEET_KEYS and sheet["serializedVersion"] == 2
    assert sheet["spriteCustomMetadata"] == {"entries": []} and sheet["internalID"] == 0
    for sprite in sheet["sprites"]:
        assert list(sprite) == UNITY_SPRITE_KEYS and list(sprite["rect"]) == UNITY_RECT_KEYS
        assert sprite["serializedVersion"] == 2 and sprite["rect"]["serializedVersion"] == 2
        assert sprite["border"] == {"x": 0, "y": 0, "z": 0, "w": 0}
        # Unity writes BottomCenter as alignment 7 with pivot {x: 0.5, y: 0} (e.g.
        # Unity-Technologies/PhysicsExamples2D Assets/Sprites/Misc/Player_SpriteSheet.png.meta).
        assert sprite["alignment"] == 7 and sprite["pivot"] == {"x": 0.5, "y": 0}
    # Unity writes nameFileIdTable sorted by name; as text, one "name: id" line per sprite.
    table = re.search(r"    nameFileIdTable:\n((?:      .*\n)+)", text).group(1).splitlines()
    assert [line.split(":")[0].strip() for line in table] == sorted(s["name"] for s in sheet["sprites"])
    assert importer["internalIDToNameTable"] == [] and importer["externalObjects"] == {}


def test_pixel_art_uses_point_filter_and_no_compression(tmp_path):
    result = _export(tmp_path, pixel_art=True, size=48, palette=16)
    importer = _meta(result.out_dir / f"{result.sheet.pages[0].file}.meta")["TextureImporter"]
    assert importer["textureSettings"]["filterMode"] == 0
    assert importer["platformSettings"][0]["textureCompression"] == 0
