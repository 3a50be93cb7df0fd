"""Unity texture `.png.meta`: a Multiple-mode sprite sheet (TextureImporter, spriteMode 2).

Unity sprite rects have their origin at the texture's BOTTOM-left, so y is flipped here. The
asset GUID and every sprite's spriteID/internalID are hashes of the character and the page/frame
names: a re-export produces the same ids and scenes and prefabs keep their references.
"""

from __future__ import annotations

import hashlib

from game_export.packing import next_pot
from game_export.sheet import Sheet, SheetFrame

# Unity's SpriteAlignment presets (pivot in Unity's y-up fractions); anything else is Custom (9).
_ALIGNMENTS = {(0.5, 0.5): 0, (0.0, 1.0): 1, (0.5, 1.0): 2, (1.0, 1.0): 3, (0.0, 0.5): 4,
               (1.0, 0.5): 5, (0.0, 0.0): 6, (0.5, 0.0): 7, (1.0, 0.0): 8}
CUSTOM_ALIGNMENT = 9


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(("lorastrap",) + parts).encode("utf-8")).digest()


def asset_guid(character: str, file: str) -> str:
    """32 hex digits, stable for a character's page file."""
    return _digest("guid", character, file)[:16].hex()


def sprite_id(character: str, frame: str) -> str:
    return _digest("spriteID", character, frame)[:16].hex()


def internal_id(character: str, frame: str) -> int:
    """A signed 64-bit id (what scenes store as fileID), never 0 (0 means 'none' to Unity)."""
    value = int.from_bytes(_digest("internalID", character, frame)[:8], "big", signed=True)
    return value or 1


def unity_rect(frame: SheetFrame, page_height: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) with y measured from the bottom of the texture."""
    return frame.x, page_height - (frame.y + frame.h), frame.w, frame.h


def unity_pivot(sheet: Sheet, frame: SheetFrame) -> tuple[float, float]:
    px, py = sheet.pivot_in_region(frame)
    return round(px, 6), round(1.0 - py, 6)


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _sprite_block(sheet: Sheet, frame: SheetFrame, page_height: int) -> list[str]:
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
        f"      spriteID: {sprite_id(sheet.character, frame.name)}",
        f"      internalID: {internal_id(sheet.character, frame.name)}",
        "      vertices: []",
        "      indices: ",
        "      edges: []",
        "      weights: []",
    ]


def unity_meta(sheet: Sheet, page_index: int, pixels_per_unit: float = 100.0) -> str:
    """The .png.meta text for page `page_index` of `sheet`."""
    page = sheet.pages[page_index]
    frames = sheet.frames_on(page_index)
    point = sheet.pixel_art
    # Unity shrinks textures larger than maxTextureSize: never let it touch our sheet.
    max_size = min(16384, max(32, next_pot(max(page.width, page.height))))
    mirrored = [f.name for f in frames if f.mirrored]
    # Plain YAML scalar: no ": " inside, so Unity and YAML parsers read it as one string.
    user_data = ("lorastrap mirrored frames " + " ".join(mirrored)) if mirrored else ""
    sprites: list[str] = []
    for frame in frames:
        sprites += _sprite_block(sheet, frame, page.height)
    name_table = [f"      {f.name}: {internal_id(sheet.character, f.name)}" for f in frames]
    lines = [
        "fileFormatVersion: 2",
        f"guid: {asset_guid(sheet.character, page.file)}",
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
