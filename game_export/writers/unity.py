"""Unity texture `.png.meta`: a Multiple-mode sprite sheet (TextureImporter, spriteMode 2).

Unity sprite rects have their origin at the texture's BOTTOM-left, so y is flipped here.

Ids, as Unity itself keeps them: scenes, prefabs and animation clips reference a sprite by the
texture's `guid` plus the sprite's `internalID` (spriteID identifies it in the Sprite Editor).
- A `.meta` already in the target folder is read BEFORE anything is written: its `guid` is kept,
  and every sprite whose name is unchanged keeps its `internalID` and `spriteID` — so references
  survive a retrain and re-export. Sprites that are new get fresh ids.
- Without a `.meta` the GUID is a hash of the page's absolute path, so two exports to two places
  (which may end up in one Unity project) never share a GUID, and exporting twice to the same
  place gives the same GUID even if the `.meta` was deleted in between.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from game_export.errors import ExportError
from game_export.packing import next_pot
from game_export.sheet import Sheet, SheetFrame

# Unity's SpriteAlignment presets (pivot in Unity's y-up fractions); anything else is Custom (9).
_ALIGNMENTS = {(0.5, 0.5): 0, (0.0, 1.0): 1, (0.5, 1.0): 2, (1.0, 1.0): 3, (0.0, 0.5): 4,
               (1.0, 0.5): 5, (0.0, 0.0): 6, (0.5, 0.0): 7, (1.0, 0.0): 8}
CUSTOM_ALIGNMENT = 9

_GUID_LINE = re.compile(r"^guid:\s*([0-9a-fA-F]{32})\s*$", re.M)
# A field of one entry of spriteSheet.sprites (exactly six spaces: deeper keys belong to `rect`).
_SPRITE_FIELD = re.compile(r"^      (name|spriteID|internalID):[ ]?(.*?)\s*$")


@dataclass(frozen=True)
class SpriteIds:
    internal_id: int
    sprite_id: str


@dataclass
class KeptIds:
    """What a previous `.meta` says: the asset GUID and the ids of its sprites by name."""

    guid: str
    sprites: dict[str, SpriteIds] = field(default_factory=dict)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(("lorastrap",) + parts).encode("utf-8")).digest()


def asset_guid(asset_path: str | Path) -> str:
    """32 hex digits for a texture that has no `.meta` yet: a hash of its absolute path."""
    return _digest("guid", str(Path(asset_path).expanduser().resolve()))[:16].hex()


def sprite_id(guid: str, frame: str, salt: int = 0) -> str:
    return _digest("spriteID", guid, frame, str(salt))[:16].hex()


def internal_id(guid: str, frame: str, salt: int = 0) -> int:
    """A signed 64-bit id (what scenes store as fileID), never 0 (0 means 'none' to Unity)."""
    value = int.from_bytes(_digest("internalID", guid, frame, str(salt))[:8], "big", signed=True)
    return value or 1


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def read_kept_ids(meta_path: Path) -> KeptIds | None:
    """The GUID and sprite ids of an existing `.meta` (ours or re-saved by Unity); None if absent."""
    try:
        text = meta_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ExportError(f"cannot read {meta_path} ({exc.strerror or exc}); its GUID must be kept "
                          "so Unity references survive") from exc
    found = _GUID_LINE.search(text)
    if found is None:
        raise ExportError(f"{meta_path} has no guid line, so it is not a Unity .meta; move it away "
                          "or restore it, then export again")
    kept = KeptIds(guid=found.group(1).lower())
    in_sprites, entry = False, {}

    def close_entry() -> None:
        name, iid, sid = entry.get("name"), entry.get("internalID"), entry.get("spriteID")
        if name and iid and re.fullmatch(r"-?\d+", iid) and int(iid) != 0:
            kept.sprites[name] = SpriteIds(int(iid), sid or sprite_id(kept.guid, name))

    for line in text.splitlines():
        if line.rstrip() == "    sprites:":
            in_sprites = True
            continue
        if not in_sprites:
            continue
        if line.startswith("    - "):  # the next sprite entry
            close_entry()
            entry = {}
        elif not line.startswith("      "):  # back at spriteSheet level: the list has ended
            break
        match = _SPRITE_FIELD.match(line)
        if match:
            entry[match.group(1)] = _scalar(match.group(2))
    close_entry()
    return kept


def assign_ids(guid: str, names: list[str], kept: KeptIds | None) -> dict[str, SpriteIds]:
    """Kept ids for names the previous `.meta` had; fresh, non-colliding ids for the rest."""
    old = kept.sprites if kept else {}
    ids = {name: old[name] for name in names if name in old}
    used_internal = {i.internal_id for i in old.values()}
    used_sprite = {i.sprite_id for i in old.values()}
    for name in names:
        if name in ids:
            continue
        salt = 0
        while (internal_id(guid, name, salt) in used_internal
               or sprite_id(guid, name, salt) in used_sprite):
            salt += 1
        ids[name] = SpriteIds(internal_id(guid, name, salt), sprite_id(guid, name, salt))
        used_internal.add(ids[name].internal_id)
        used_sprite.add(ids[name].sprite_id)
    return ids


def unity_rect(frame: SheetFrame, page_height: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) with y measured from the bottom of the texture."""
    return frame.x, page_height - (frame.y + frame.h), frame.w, frame.h


def unity_pivot(sheet: Sheet, frame: SheetFrame) -> tuple[float, float]:
    px, py = sheet.pivot_in_region(frame)
    return round(px, 6), round(1.0 - py, 6)


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _sprite_block(sheet: Sheet, frame: SheetFrame, page_height: int, ids: SpriteIds) -> list[str]:
    x, y, w, h = unity_rect(frame, page_height)
    pivot = unity_pivot(sheet, frame)
    alignment = _ALIGNMENTS.get(pivot, CUSTOM_ALIGNMENT)
    return [
        "    - serializedVersion: 2",
        f"      name: {frame.name}",
        "      rect:",
        "        serializedVersion: 2",
        f"        x: {x}", f"        y: {y}", f"        width: {w}", f"        height: {h}",
        f"      alignment: {alignment}",
        f"      pivot: {{x: {_num(pivot[0])}, y: {_num(pivot[1])}}}",
        "      border: {x: 0, y: 0, z: 0, w: 0}",
        "      customData: ",
        "      outline: []",
        "      physicsShape: []",
        "      tessellationDetail: -1",
        "      bones: []",
        f"      spriteID: {ids.sprite_id}",
        f"      internalID: {ids.internal_id}",
        "      vertices: []",
        "      indices: ",
        "      edges: []",
        "      weights: []",
    ]


def unity_metas(sheet: Sheet, target_dir: Path, pixels_per_unit: float = 100.0) -> dict[str, str]:
    """`<page>.png.meta` name → text for every page, keeping the ids of the `.meta` files that
    are already in `target_dir` (the folder the export will finally be in; read before writing)."""
    metas = {}
    for index, page in enumerate(sheet.pages):
        name = f"{page.file}.meta"
        kept = read_kept_ids(target_dir / name)
        guid = kept.guid if kept else asset_guid(target_dir / page.file)
        metas[name] = unity_meta(sheet, index, guid, kept, pixels_per_unit)
    return metas


def unity_meta(sheet: Sheet, page_index: int, guid: str, kept: KeptIds | None = None,
               pixels_per_unit: float = 100.0) -> str:
    """The .png.meta text for page `page_index` of `sheet` (ids: see the module doc)."""
    page = sheet.pages[page_index]
    frames = sheet.frames_on(page_index)
    ids = assign_ids(guid, [f.name for f in frames], kept)
    point = sheet.pixel_art
    # Unity shrinks textures larger than maxTextureSize: never let it touch our sheet.
    max_size = min(16384, max(32, next_pot(max(page.width, page.height))))
    mirrored = [f.name for f in frames if f.mirrored]
    # Plain YAML scalar: no ": " inside, so Unity and YAML parsers read it as one string.
    user_data = ("lorastrap mirrored frames " + " ".join(mirrored)) if mirrored else ""
    sprites: list[str] = []
    for frame in frames:
        sprites += _sprite_block(sheet, frame, page.height, ids[frame.name])
    # Unity writes this table sorted by name (ordinal), whatever the sprites' order.
    name_table = [f"      {name}: {ids[name].internal_id}" for name in sorted(ids)]
    lines = [
        "fileFormatVersion: 2",
        f"guid: {guid}",
        "TextureImporter:",
        "  internalIDToNameTable: []",
        "  externalObjects: {}",
        "  serializedVersion: 13",
        "  mipmaps:",
        "    mipMapMode: 0", "    enableMipMap: 0", "    sRGBTexture: 1", "    linearTexture: 0",
        "    fadeOut: 0", "    borderMipMap: 0", "    mipMapsPreserveCoverage: 0",
        "    alphaTestReferenceValue: 0.5", "    mipMapFadeDistanceStart: 1",
        "    mipMapFadeDistanceEnd: 3",
        "  bumpmap:",
        "    convertToNormalMap: 0", "    externalNormalMap: 0", "    heightScale: 0.25",
        "    normalMapFilter: 0", "    flipGreenChannel: 0",
        "  isReadable: 0", "  streamingMipmaps: 0", "  streamingMipmapsPriority: 0", "  vTOnly: 0",
        "  ignoreMipmapLimit: 0", "  grayScaleToAlpha: 0", "  generateCubemap: 6",
        "  cubemapConvolution: 0", "  seamlessCubemap: 0", "  textureFormat: 1",
        f"  maxTextureSize: {max_size}",
        "  textureSettings:",
        "    serializedVersion: 2",
        f"    filterMode: {0 if point else 1}",
        "    aniso: 1", "    mipBias: 0", "    wrapU: 1", "    wrapV: 1", "    wrapW: 1",
        "  nPOTScale: 0",
        "  lightmap: 0",
        "  compressionQuality: 50",
        "  spriteMode: 2",
        "  spriteExtrude: 1",
        "  spriteMeshType: 0",
        "  alignment: 0",
        "  spritePivot: {x: 0.5, y: 0.5}",
        f"  spritePixelsToUnits: {_num(pixels_per_unit)}",
        "  spriteBorder: {x: 0, y: 0, z: 0, w: 0}",
        "  spriteGenerateFallbackPhysicsShape: 0",
        "  alphaUsage: 1", "  alphaIsTransparency: 1", "  spriteTessellationDetail: -1",
        "  textureType: 8", "  textureShape: 1", "  singleChannelComponent: 0",
        "  flipbookRows: 1", "  flipbookColumns: 1", "  maxTextureSizeSet: 0",
        "  compressionQualitySet: 0", "  textureFormatSet: 0", "  ignorePngGamma: 0",
        "  applyGammaDecoding: 0", "  swizzle: 50462976", "  cookieLightType: 0",
        "  platformSettings:",
        "  - serializedVersion: 4",
        "    buildTarget: DefaultTexturePlatform",
        f"    maxTextureSize: {max_size}",
        "    resizeAlgorithm: 0", "    textureFormat: -1",
        # Block compression smears pixel art; keep it uncompressed there.
        f"    textureCompression: {0 if point else 1}",
        "    compressionQuality: 50", "    crunchedCompression: 0", "    allowsAlphaSplitting: 0",
        "    overridden: 0", "    ignorePlatformSupport: 0", "    androidETC2FallbackOverride: 0",
        "    forceMaximumCompressionQuality_BC6H_BC7: 0",
        "  spriteSheet:",
        "    serializedVersion: 2",
        "    sprites:" if sprites else "    sprites: []",
        *sprites,
        "    outline: []", "    customData: ", "    physicsShape: []", "    bones: []",
        "    spriteID: ", "    internalID: 0", "    vertices: []", "    indices: ", "    edges: []",
        "    weights: []", "    secondaryTextures: []",
        "    spriteCustomMetadata:", "      entries: []",
        "    nameFileIdTable:" if name_table else "    nameFileIdTable: {}",
        *name_table,
        "  mipmapLimitGroupName: ",
        "  pSDRemoveMatte: 0",
        f"  userData: {user_data}",
        "  assetBundleName: ",
        "  assetBundleVariant: ",
    ]
    return "\n".join(lines) + "\n"
