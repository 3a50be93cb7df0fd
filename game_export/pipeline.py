"""The one entry point: `export_sprites(request) -> ExportResult`.

frames → background removal (one remover, one model load) → trim → one scale, shared baseline →
pack → page PNGs → engine files + contact sheet + manifest, all written through a staged folder
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from game_export.atlas import render_pages
from game_export.background import make_remover
from game_export.contact_sheet import SheetCell, make_contact_sheet
from game_export.cutout import Cutout, cut_out_all, group_frames
from game_export.errors import ExportError
from game_export.frames import safe_name
from game_export.layout import lay_out, planned_cell
from game_export.packing import Packing, pack_grid, pack_tight
from game_export.request import ENGINES, ExportRequest, ExportResult
from game_export.sheet import Animation, Page, Sheet, SheetFrame
from game_export.writers.aseprite import aseprite_json, aseprite_name
from game_export.writers.godot import godot_spriteframes, res_join
from game_export.writers.texturepacker import json_name, split_animations, texturepacker_json
from game_export.writers.unity import unity_metas
from lorastrap.kernel.atomic import replaced_dir
from lorastrap.kernel.budget import gib, over_budget
from lorastrap.kernel.pngmeta import png_bytes

PREVIEW_COLUMNS = 8
PREVIEW_MIN_CELL = 112


def _ours(name: str, slug: str) -> bool:
    """A name this exporter writes for `slug`: pages, .tres, .meta, JSON, preview, manifest, or an
    engine's sub-folder."""
    return name.startswith((f"{slug}.", f"{slug}_")) or name in ENGINES


def _check_writable(out_dir: Path, slug: str) -> None:
    """The export folder is swapped in whole, so it must be a folder of its own: new, empty, or
    holding an earlier export of this character (its files — copied into a game project without
    the manifest, Unity's rewritten .meta files beside them — count); its parent must be writable
    (the stage goes there)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {out_dir} is a file, not a folder; choose another --out")
    if out_dir.is_dir() and (names := [p.name for p in out_dir.iterdir()]) and \
            not any(_ours(n, slug) for n in names):
        raise ExportError(f"--out {out_dir} already holds other files and no export of {slug}; it is "
                          f"replaced as a whole: export into a folder of its own, e.g. {out_dir / slug}")
    if out_dir.parent == out_dir:
        raise ExportError(f"--out {out_dir} is a file system root; export into a folder of its own")
    probe = out_dir.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"output directory {out_dir} is not writable ({probe} is not a writable "
                          "folder); choose another --out")


def _page_files(slug: str, count: int) -> list[str]:
    return [f"{slug}.png"] if count == 1 else [f"{slug}_{i}.png" for i in range(count)]


# Copies of every frame's RGBA pixels alive at the peak: the scaled frame, the page array, the
# page image, its PNG encoding. Measured as peak RSS growth of a 2-frame export at --size 2000
# and 4000: 3.3x and 3.1x the frames' RGBA bytes; 4 leaves a margin.
_COPIES_AT_PEAK = 4


def check_size(request: ExportRequest, cutouts: list[Cutout]) -> None:
    """Refuse, before anything is scaled, frames bigger than a texture or than the memory left."""
    cell_w, cell_h = planned_cell([c.trimmed for c in cutouts], request.size)
    margin = request.padding + request.extrude
    slot_w, slot_h = cell_w + 2 * margin, cell_h + 2 * margin
    if slot_w > request.max_texture_size or slot_h > request.max_texture_size:
        raise ExportError(f"with --size {request.size} each frame is {cell_w}x{cell_h} px, more than "
                          f"--max-texture-size {request.max_texture_size}; use a smaller --size")
    needed = _COPIES_AT_PEAK * 4 * slot_w * slot_h * len(cutouts)  # copies x RGBA x pixels x frames
    usable = over_budget(needed)
    if usable is not None:
        raise ExportError(f"this export needs about {gib(needed)} of memory ({len(cutouts)} frames of "
                          f"{cell_w}x{cell_h} px, RGBA), more than the {gib(usable)} available; use a "
                          "smaller --size or export fewer frames at a time")


def _build_sheet(request: ExportRequest, cutouts: list[Cutout]) -> tuple[Sheet, list[Image.Image], Packing]:
    cell, laid = lay_out([c.trimmed for c in cutouts], request.size, request.pivot,
                         request.pixel_art, request.palette if request.pixel_art else None)
    margin = request.padding + request.extrude
    groups: dict[str, list[int]] = {}
    for index, c in enumerate(cutouts):
        groups.setdefault(c.group, []).append(index)
    if request.pack == "grid":
        packing = pack_grid((cell.width, cell.height), list(groups.values()), margin,
                            request.max_texture_size, request.power_of_two)
    else:
        packing = pack_tight([lo.image.size for lo in laid], margin, request.max_texture_size,
                             request.power_of_two)
    images = render_pages(packing, laid, request.extrude)
    slug = safe_name(request.character)
    pages = tuple(Page(f, w, h) for f, (w, h) in zip(_page_files(slug, len(packing.pages)), packing.pages))
    frames = []
    for c, lo, slot in zip(cutouts, laid, packing.slots):
        offset = (0, 0) if packing.kind == "grid" else lo.offset
        frames.append(SheetFrame(
            name=c.name, animation=c.group, page=slot.page, x=slot.x, y=slot.y, w=slot.w, h=slot.h,
            source_w=cell.width, source_h=cell.height, offset_x=offset[0], offset_y=offset[1],
            source=str(c.spec.path), view=c.spec.view, direction=c.direction, mirrored=c.mirrored))
    animations = tuple(Animation(name, tuple(cutouts[i].name for i in idx), request.fps, request.loop)
                       for name, idx in groups.items())
    sheet = Sheet(request.character, pages, tuple(frames), animations, cell.pivot,
                  request.pixel_art, packing.kind)
    return sheet, images, packing


def _engine_files(request: ExportRequest, sheet: Sheet, pngs: list[bytes]) -> dict[str, bytes]:
    """Relative path → content, for every engine asked for.

    With several engines each gets a sub-folder named after it, and `--godot-res` names the
    res:// folder of `--out` itself, so the Godot textures are looked up in `<res>/<engine>/`.
    """
    nested = len(request.engines) > 1
    slug = safe_name(request.character)
    files: dict[str, bytes] = {}
    for engine in sorted(request.engines):
        folder = f"{engine}/" if nested else ""
        for page, data in zip(sheet.pages, pngs):
            files[folder + page.file] = data
        if engine in ("godot4", "godot3"):
            res = res_join(request.godot_res, engine) if request.godot_res and nested else request.godot_res
            text = godot_spriteframes(sheet, res, 4 if engine == "godot4" else 3)
            files[f"{folder}{slug}.tres"] = text.encode()
        elif engine == "unity":
            # Reads the .meta files already in the final folder, to keep their GUID and ids.
            target = Path(request.out_dir) / folder
            for name, text in unity_metas(sheet, target, request.pixels_per_unit).items():
                files[folder + name] = text.encode()
        elif engine == "json":
            for i, page in enumerate(sheet.pages):
                files[folder + json_name(page.file)] = texturepacker_json(sheet, i).encode()
                files[folder + aseprite_name(page.file)] = aseprite_json(sheet, i).encode()
    return files


def preview_sheet(sheet: Sheet, pages: list[Image.Image]) -> Image.Image:
    """All frames on a checkerboard, one row per animation, labelled with frame names."""
    frame_of = sheet.frame_index()
    columns = max(1, min(PREVIEW_COLUMNS, max(len(a.frames) for a in sheet.animations)))
    cells: list[SheetCell] = []
    for anim in sheet.animations:
        row = [frame_of[n] for n in anim.frames]
        row += [None] * (-len(row) % columns)  # each animation starts on a new row
        for f in row:
            if f is None:
                cells.append(SheetCell(Image.new("RGBA", (1, 1), (0, 0, 0, 0))))
                continue
            # The whole logical frame, so every cell shows the same scale and baseline.
            frame = Image.new("RGBA", (f.source_w, f.source_h), (0, 0, 0, 0))
            frame.paste(pages[f.page].crop((f.x, f.y, f.x + f.w, f.y + f.h)), (f.offset_x, f.offset_y))
            label = f.name + (" (mirrored)" if f.mirrored else "")
            cells.append(SheetCell(frame, label))
    title = f"{sheet.character}: {len(sheet.frames)} frames, {len(sheet.animations)} animations"
    largest = max(max(f.source_w, f.source_h) for f in sheet.frames)
    # Wide enough for the frame names even when the sprites are small.
    return make_contact_sheet(cells, columns, cell_size=max(PREVIEW_MIN_CELL, min(256, largest)),
                              title=title, checkerboard=True)


def _manifest(request: ExportRequest, sheet: Sheet, remover: str, warnings: list[str],
              files: list[str], efficiency: float) -> bytes:
    data = {
        "character": sheet.character, "remover": remover, "packing": sheet.packing,
        "cell": [sheet.frames[0].source_w, sheet.frames[0].source_h], "pivot": list(sheet.pivot),
        "engines": sorted(request.engines), "godot_res": request.godot_res,
        "pages": [{"file": p.file, "width": p.width, "height": p.height} for p in sheet.pages],
        "efficiency": round(efficiency, 4),
        "animations": [{"name": a.name, "frames": list(a.frames), "fps": a.fps, "loop": a.loop}
                       for a in sheet.animations],
        "frames": [{"name": f.name, "animation": f.animation, "source": f.source, "view": f.view,
                    "direction": f.direction, "mirrored": f.mirrored, "page": f.page,
                    "rect": [f.x, f.y, f.w, f.h]} for f in sheet.frames],
        "warnings": warnings, "files": files,
    }
    return (json.dumps(data, indent=2) + "\n").encode()


def _previous_files(out_dir: Path, manifest_name: str) -> set[str]:
    """The files the previous export into `out_dir` wrote (its manifest lists them)."""
    try:
        listed = json.loads((out_dir / manifest_name).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {f for f in listed if isinstance(f, str)} | {manifest_name}


def export_sprites(request: ExportRequest) -> ExportResult:
    """Export `request.frames` as sprite sheets for the requested engines (see module doc)."""
    request.validate()
    out_dir = Path(request.out_dir)
    slug = safe_name(request.character)
    manifest_name = f"{slug}_export.json"
    _check_writable(out_dir, slug)
    remover = make_remover(request.remover)  # one remover = at most one model load per export
    cutouts, warnings = cut_out_all(request.frames, remover, request.cleanup, request.progress)
    cutouts, more = group_frames(cutouts, request.directions, request.mirror_side)
    warnings += more
    check_size(request, cutouts)
    sheet, page_images, packing = _build_sheet(request, cutouts)
    if "json" in request.engines:
        warnings += [f"animation {name} spans several pages: each page's JSON holds only its part "
                     "(raise --max-texture-size to keep it on one)" for name in split_animations(sheet)]
    efficiency = packing.efficiency([(f.w, f.h) for f in sheet.frames])

    files = _engine_files(request, sheet, [png_bytes(p) for p in page_images])
    preview_name = f"{slug}_preview.png"
    if request.preview:
        files[preview_name] = png_bytes(preview_sheet(sheet, page_images))
    files[manifest_name] = _manifest(request, sheet, remover.name, warnings,
                                     sorted(list(files) + [manifest_name]), efficiency)
    previous = _previous_files(out_dir, manifest_name)
    try:
        # The whole folder is swapped in at once: a reader (or a crash) sees the old export or the
        # new one. Files that are not ours (Godot's .import files, the user's own) are carried
        # over; files of the previous export that this one does not write (a page less) are not.
        with replaced_dir(out_dir, keep=lambda rel: rel not in previous) as stage:
            for rel, data in files.items():
                target = stage / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write to {out_dir}: {exc.strerror or exc}; choose another --out") from exc
    return ExportResult(
        out_dir=out_dir, files=sorted(out_dir / rel for rel in files), sheet=sheet,
        remover=remover.name, remover_loads=remover.loads, efficiency=efficiency, warnings=warnings,
        preview=out_dir / preview_name if request.preview else None, manifest=out_dir / manifest_name)
