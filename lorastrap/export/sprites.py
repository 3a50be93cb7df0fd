"""`lorastrap export sprites`: a character's images → engine-ready sprite sheets + an `exports` row.

Frames come from the character's curated/ folder by default, from `--from` (a folder of the
character such as candidates/r2, or any folder), or from `--animation NAME=GLOB` (one animation
per glob). The registry row records which images, LoRA(s) and dataset version made the frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from game_export import ENGINES, ExportRequest, ExportResult, FrameSpec, export_sprites
from game_export.frames import frames_from_folder, frames_from_globs, parse_animation_option
from lorastrap.dataset.versions import latest_version
from lorastrap.image_store import find_image
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.options import option, recorded
from lorastrap.kernel.progress import progress_bar
from lorastrap.queries import get_character
from lorastrap.workspace import CONTACT_SHEET_NAME, Workspace, unit_of_work
from registry.blobs import sha256_bytes
from registry.models import DatasetVersion, Export, Lora

DEFAULT_ANIMATION = "idle"


@dataclass
class SpriteOptions:
    """Everything `export sprites` accepts besides the character: the one declaration of its
    command-line options (lorastrap.cli.options), the library call, and the settings the `exports`
    row records. Values are as typed (strings such as the pivot are parsed here)."""

    engines: Sequence[str] = option(("godot4",), "--engine", multiple=True, show_default=True, help=(
        "godot4, godot3, unity, json (PixiJS/Phaser) or all; repeat or comma-separate. With several engines "
        "each gets its own sub-folder of --out named after it."))
    out: Path | None = option(None, "--out", path={"file_okay": False}, record=False, help=(
        "Output folder (default: characters/<name>/exports/sprites). Unity: .meta files already there keep "
        "their GUID and sprite ids."))
    godot_res: str | None = option(None, "--godot-res", type="TEXT", help=(
        "The res:// path of --out in your Godot project, e.g. res://sprites/hero; the .tres then loads its "
        "textures from there (with several engines: from <res>/godot4/ or <res>/godot3/). Default: paths "
        "relative to the .tres, which load wherever the folder is copied."))
    source: str | None = option(None, "--from", help=(
        "Frame folder: candidates/r2 (of the character) or any folder (default: curated/)."))
    animations: Sequence[str] = option((), "--animation", multiple=True, metavar="NAME=GLOB",
                                       help="One animation per glob, frames in natural order; repeatable.")
    animation: str = option(DEFAULT_ANIMATION, "--animation-name", type="NAME", show_default=True,
                            help="Animation name for a folder of frames (without --animation).")
    fps: float = option(8.0, "--fps", floats=(0, 240, True), show_default=True, help="Animation speed.")
    loop: bool = option(True, "--loop/--no-loop", show_default=True)
    size: int | None = option(None, "--size", ints=(1, 16384), help="Character height in px (one scale for all frames).")
    pixel_art: bool = option(False, "--pixel-art", help="Nearest-neighbour scaling, hard alpha, point filter.")
    palette: int | None = option(None, "--palette", ints=(2, 256), help="With --pixel-art: reduce to N shared colours.")
    remover: str = option("flood", "--remover", show_default=True, help=(
        "flood[:TOLERANCE], none, rembg:MODEL (e.g. isnet-anime) or rembg:/path/model.onnx."))
    pack: str = option("grid", "--pack", choices=("grid", "tight"), show_default=True)
    padding: int = option(2, "--padding", ints=(0, 256), show_default=True, help="Empty px around each frame.")
    extrude: int = option(1, "--extrude", ints=(0, 64), show_default=True, help="Edge px repeated around each frame.")
    max_texture_size: int = option(4096, "--max-texture-size", ints=(16, 16384), show_default=True)
    power_of_two: bool = option(False, "--pot", help="Power-of-two page sizes.")
    pivot: str = option("0.5,1", "--pivot", show_default=True, help="Pivot X,Y as fractions, y down.")
    directions: bool = option(False, "--directions", help="Direction rows (down, up, side, other_side) from view tags.")
    mirror_side: bool = option(False, "--mirror-side", help="Mirror side views into the missing other side (flagged).")
    pixels_per_unit: float = option(100.0, "--ppu", floats=(0, 100000, True), show_default=True,
                                    help="Unity pixels per unit.")
    progress: bool = option(True, "--no-progress", invert=True, record=False, help="No progress bar.")


@dataclass
class SpriteExportSummary:
    export_id: int
    character: str
    out_dir: Path
    engines: list[str]
    frames: int
    animations: dict[str, int]
    pages: list[str]
    files: list[str]
    remover: str
    remover_loads: int
    efficiency: float
    lora: str | None
    dataset_version: int | None
    preview: str | None
    warnings: list[str] = field(default_factory=list)


def parse_engines(values: Sequence[str]) -> frozenset[str]:
    """`--engine` values, repeatable or comma-separated; `all` means every engine."""
    names = {v.strip().lower() for value in values for v in value.split(",") if v.strip()}
    if "all" in names:
        return frozenset(ENGINES)
    unknown = names - set(ENGINES)
    if unknown or not names:
        raise UserError(f"unknown --engine {', '.join(sorted(unknown)) or '(none)'}; "
                        f"use {', '.join(ENGINES)} or all")
    return frozenset(names)


def parse_pivot(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise UserError(f"--pivot {text!r} must be two fractions 'X,Y' (y down), e.g. 0.5,1 "
                        "for bottom centre") from exc
    return x, y


def _resolve_source(ws: Workspace, slug: str, source: str | None) -> Path:
    if source is None:
        return ws.curated_dir(slug)
    given = Path(source).expanduser()
    for candidate in (given, ws.character_dir(slug) / source):
        if candidate.is_dir():
            return candidate.resolve()
    raise UserError(f"--from {source}: no such folder (looked in the current folder and in "
                    f"{ws.character_dir(slug)}); e.g. --from candidates/r2")


def contact_sheets(ws: Workspace, slug: str) -> set[Path]:
    """The rounds' contact sheets (candidates/rN/contact-sheet.png): overviews, never frames."""
    return {p.resolve() for p in ws.candidates_dir(slug).glob(f"r*/{CONTACT_SHEET_NAME}")}


def select_frames(ws: Workspace, slug: str, opts: SpriteOptions) -> list[FrameSpec]:
    folder = _resolve_source(ws, slug, opts.source)
    sheets = contact_sheets(ws, slug)
    if opts.animations:
        pairs = [parse_animation_option(a) for a in opts.animations]
        return frames_from_globs(pairs, base=folder if opts.source else None, exclude=sheets)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise UserError(f"no images in {folder}; curate some first (`lorastrap curate {slug} --keep …`) "
                        "or pass --from DIR / --animation NAME=GLOB")
    return frames_from_folder(folder, opts.animation, exclude=sheets)


def _origins(s, frames: Sequence[FrameSpec]) -> tuple[list[dict[str, Any]], Lora | None]:
    """Per frame: the registered image and the LoRA that generated it; plus the main LoRA."""
    rows, lora_shas = [], Counter()
    for spec in frames:
        sha = sha256_bytes(spec.path.read_bytes())
        image = find_image(s, sha)
        prov = (image.provenance if image is not None else None) or {}
        loras = [l.get("sha256") for l in prov.get("lora") or [] if isinstance(l, dict) and l.get("sha256")]
        lora_shas.update(loras[:1])
        rows.append({"sha256": sha, "image_id": image.id if image else None,
                     "origin": image.origin if image else None, "lora_sha256": loras[:1] or None})
    main = None
    if lora_shas:
        main = s.scalars(select(Lora).where(Lora.sha256 == lora_shas.most_common(1)[0][0])).first()
    return rows, main


def _request(opts: SpriteOptions, frames: list[FrameSpec], character: str, out: Path) -> ExportRequest:
    bar = progress_bar(len(frames), "export", "frame", enabled=opts.progress)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return ExportRequest(
        frames=frames, character=character, out_dir=out, engines=parse_engines(opts.engines),
        godot_res=opts.godot_res, size=opts.size, pixel_art=opts.pixel_art, palette=opts.palette,
        remover=opts.remover, pack=opts.pack, padding=opts.padding, extrude=opts.extrude,
        max_texture_size=opts.max_texture_size, power_of_two=opts.power_of_two,
        pivot=parse_pivot(opts.pivot), fps=opts.fps, loop=opts.loop, directions=opts.directions,
        mirror_side=opts.mirror_side, pixels_per_unit=opts.pixels_per_unit, progress=progress)


@unit_of_work
def export_character_sprites(ws: Workspace, name: str, opts: SpriteOptions) -> SpriteExportSummary:
    """Export a character's frames (see module doc) and record the export in the registry."""
    with ws.registry() as reg:
        with reg.session() as s:  # short read: do not hold the registry during the export
            character = get_character(s, name)
            slug, character_id = character.slug, character.id
        frames = select_frames(ws, slug, opts)
        out = ws.check_output_folder(opts.out or ws.exports_dir(slug) / "sprites")
        request = _request(opts, frames, slug, out)
        result = export_sprites(request)
        with reg.session() as s:  # one transaction: the export row
            character = get_character(s, slug)
            frame_origins, lora = _origins(s, frames)
            # The dataset that trained the LoRA that made the frames; else the current one.
            if lora is not None and lora.dataset_version_id:
                dataset = s.get(DatasetVersion, lora.dataset_version_id)
            else:
                dataset = latest_version(s, character)
            row = Export(character_id=character_id, engine=",".join(sorted(request.engines)),
                         out_dir=ws.rel(out), lora_id=lora.id if lora else None,
                         dataset_version_id=dataset.id if dataset else None,
                         frame_count=len(result.sheet.frames),
                         files=[ws.rel(p) for p in result.files],
                         params=_params(opts, request, result, frame_origins))
            s.add(row)
            s.flush()
            return _summary(row.id, slug, request, result, lora, dataset.number if dataset else None)


def _params(opts: SpriteOptions, request: ExportRequest, result: ExportResult,
            origins: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorded settings (every option, the pivot parsed, the remover as resolved) and results."""
    by_source = {str(spec.path): o for spec, o in zip(request.frames, origins)}
    frames = [{**r, **by_source.get(r["source"], {})} for r in result.frame_records()]
    return {
        **recorded(opts), "pivot": list(request.pivot), "remover": result.remover,
        "remover_loads": result.remover_loads, "pages": [p.file for p in result.sheet.pages],
        "efficiency": round(result.efficiency, 4), "warnings": result.warnings, "frames": frames,
    }


def _summary(export_id: int, slug: str, request: ExportRequest, result: ExportResult,
             lora: Lora | None, dataset_number: int | None) -> SpriteExportSummary:
    return SpriteExportSummary(
        export_id=export_id, character=slug, out_dir=result.out_dir, engines=sorted(request.engines),
        frames=len(result.sheet.frames),
        animations={a.name: len(a.frames) for a in result.sheet.animations},
        pages=[p.file for p in result.sheet.pages], files=[str(p) for p in result.files],
        remover=result.remover, remover_loads=result.remover_loads, efficiency=result.efficiency,
        lora=lora.name if lora else None, dataset_version=dataset_number,
        preview=str(result.preview) if result.preview else None, warnings=result.warnings)
