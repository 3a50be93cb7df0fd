"""`lorastrap clash fix NAME --style S --out FILE`: write the compat style LoRA (kohya format,
registered as kind `compat` with the style as parent), then re-run the grid with the original and
the compat LoRA side by side to show identity retention before and after."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select

from lorastrap.clash.grid import GRID, Section
from lorastrap.clash.options import ClashOptions
from lorastrap.clash.persist import assign_image_paths, persist_run
from lorastrap.clash.projection import METHOD, METHOD_CITATION, FixResult, compat_lora, compat_metadata
from lorastrap.clash.report import build_report
from lorastrap.clash.run import (
    Context,
    StyleRef,
    check_budget,
    grid_spec,
    load_context,
    measure,
    open_generator,
    plan_sections,
    report_header,
)
from lorastrap.clash.weightspace import analyse
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.journal import FileJournal
from lorastrap.kernel.options import recorded
from lorastrap.models.lora import kohya_tensors, read_lora, write_lora_file
from lorastrap.models.lora.validate import check_fits
from lorastrap.workspace import Workspace, unit_of_work
from registry.models import Lora


@dataclass
class FixOutcome:
    path: Path
    lora_id: int
    energy_before: float
    energy_after: float
    kept_energy: float
    blocks: list[str]
    before_after: list[dict]
    report_html: Path | None
    run_id: int | None


def _register_compat(ws: Workspace, ctx: Context, style: StyleRef, out: Path, tensors: dict, meta: dict,
                     result: FixResult) -> int:
    name = out.stem
    with FileJournal() as journal, ws.session() as s:
        row = s.scalars(select(Lora).where(Lora.kind == "compat", Lora.name == name,
                                           Lora.character_id == ctx.character_id)).first()
        if not out.exists():
            journal.will_create(out)
        saved = write_lora_file(tensors, out, meta)
        row = row or Lora(kind="compat", name=name, character_id=ctx.character_id)
        row.file_path, row.sha256, row.short_hash = ws.rel(out), saved.sha256, saved.model_hash[:12]
        row.arch, row.base_model, row.parent_lora_id = ctx.arch, ctx.base_spec, style.row_id
        row.hyperparams = {"trigger": style.trigger, "method": METHOD, "citation": METHOD_CITATION,
                           "compat_with_lora": ctx.char_row_id, "blocks": result.blocks}
        row.metrics = {"energy_before": result.energy_before, "energy_after": result.energy_after,
                       "kept_energy": result.kept_energy}
        row.status = "ready"
        s.add(row)
        s.flush()
        return row.id


def _before_after(sections: list[Section], scores: dict) -> list[dict]:
    original, compat = sections
    rows = []
    for v_old, v_new in zip((v for v in original.variants if v.kind == GRID), (v for v in compat.variants if v.kind == GRID)):
        old, new = scores[(original.style, v_old.key)], scores[(compat.style, v_new.key)]
        rows.append({"character_weight": v_old.character_weight, "style_weight": v_old.style_weight,
                     "retention_before": old.retention, "retention_after": new.retention,
                     "style_gain_before": old.style_gain, "style_gain_after": new.style_gain})
    return rows


@unit_of_work
def fix_style(ws: Workspace, name: str, style_name: str, out: Path | None = None, *, energy: float = 1.0,
              only_flagged: bool = False, grid: bool = True, report_out: Path | None = None,
              options: ClashOptions | None = None) -> FixOutcome:
    """Write (and register) the compat LoRA; unless `grid` is False, measure it against the original."""
    if not 0.0 < energy <= 1.0:
        raise UserError(f"--energy {energy} is outside (0, 1]; 1 removes every direction the character writes")
    ctx = load_context(ws, name, [style_name], options.lora_id if options else None)
    style = ctx.styles[0]
    opts = replace(options or ClashOptions([style.name]), styles=[style.name], presets=False)
    if grid:  # refuse an oversized before/after grid before writing anything
        check_budget(_fix_sections(ctx, style, opts), opts)
    report = analyse(style.lora, ctx.char_lora)
    blocks = report.flagged_blocks if only_flagged else None
    if only_flagged and not blocks:
        raise UserError(f"the weight-space analysis flags no block for {style.name}; drop --only-flagged to project everywhere")
    result = compat_lora(style.lora, ctx.char_lora, energy, blocks)
    out = Path(out) if out else ws.loras_dir(ctx.slug) / f"{ctx.slug}-{style.name}-compat.safetensors"
    if out.suffix != ".safetensors":
        raise UserError(f"{out} must end in .safetensors (the compat LoRA is written in kohya safetensors format)")
    meta = compat_metadata(style.lora, result, style.name, ctx.slug)
    tensors = kohya_tensors(result.lora, ctx.arch, ctx.base.blocks)  # sd-scripts' names, whatever the style's were
    lora_id = _register_compat(ws, ctx, style, out.resolve(), tensors, meta, result)
    outcome = FixOutcome(out, lora_id, result.energy_before, result.energy_after, result.kept_energy,
                         result.blocks, [], None, None)
    if grid:
        outcome = _rerun(ws, ctx, style, out.resolve(), lora_id, outcome, report_out, opts)
    return outcome


def _fix_sections(ctx: Context, style: StyleRef, opts: ClashOptions) -> list[Section]:
    """The original style and its compat LoRA, side by side at the same weights (no presets)."""
    base = plan_sections(ctx, opts, {})[0]
    compat_variants = [replace(v, adapter=_compat_adapter(style) if v.style_weight else None) for v in base.variants]
    return [base, Section(f"{style.name} (compat)", _compat_adapter(style), style.trigger, compat_variants)]


def _compat_adapter(style: StyleRef) -> str:
    return f"{style.name}-compat"


def _rerun(ws: Workspace, ctx: Context, style: StyleRef, path: Path, lora_id: int, outcome: FixOutcome,
           report_out: Path | None, opts: ClashOptions) -> FixOutcome:
    compat_name = _compat_adapter(style)
    sections = _fix_sections(ctx, style, opts)
    seeds = [opts.seed + i for i in range(opts.seeds)]
    compat = read_lora(path, ctx.base.blocks)
    check_fits(compat, ctx.base)
    total = check_budget(sections, opts)
    with open_generator(ws, ctx, extra=[(compat, compat_name)]) as gen:
        spec = grid_spec(ws, ctx, opts, dict(gen.pipe.unet.config), seeds)
        spec.a1111_names[compat_name] = path.stem
        measured = measure(ws, ctx, gen, sections, spec, opts)
    all_cells = measured.cells + measured.verify_cells
    assign_image_paths(all_cells)
    weightspace = {style.name: analyse(style.lora, ctx.char_lora)}
    weightspace[sections[1].style] = analyse(compat, ctx.char_lora)
    doc = build_report(report_header(ctx, measured, opts), sections, measured.cells, measured.scores, spec, ctx.slug,
                       opts.threshold, weightspace, measured.advice, measured.verify_sections, measured.verify_cells,
                       measured.verify_scores, measured.notes)
    before_after = _before_after(sections, measured.scores)
    doc["fix"] = {"file": str(path), "lora_id": lora_id, "method": METHOD, "citation": METHOD_CITATION,
                  "energy_before": outcome.energy_before, "energy_after": outcome.energy_after,
                  "kept_energy": outcome.kept_energy, "blocks": outcome.blocks, "before_after": before_after}
    out_dir = Path(report_out) if report_out else path.with_name(path.stem + "-report")
    run_id, files = persist_run(
        ws, out_dir, doc, all_cells, character_id=ctx.character_id, character_lora_id=ctx.char_row_id,
        style_lora_ids={style.name: style.row_id, sections[1].style: lora_id, compat_name: lora_id},
        params={**recorded(opts), "kind": "fix", "style": style.name, "compat_lora_id": lora_id, "views": spec.views,
                "seeds": spec.seeds}, summary={"before_after": before_after, "images": total})
    return replace(outcome, before_after=before_after, report_html=files.html, run_id=run_id)
