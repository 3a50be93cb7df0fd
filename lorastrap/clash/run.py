"""`lorastrap clash NAME --styles …`: plan the grid, generate it with one pipeline, measure,
advise, verify the advice on held-out seeds, write the report and record the run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from lorastrap.clash.blocks import layout_from_unet_config, lbw_layout, presets_for
from lorastrap.clash.grid import (
    CHARACTER_ONLY,
    GRID,
    NO_TRIGGER,
    STYLE_ONLY,
    GridCell,
    GridSpec,
    Section,
    Variant,
    run_grid,
    variant_with_blocks,
)
from lorastrap.clash.metrics import (
    CachedEmbedder,
    EmbeddingMetrics,
    EmbeddingStyle,
    IdentityMetric,
    RowScores,
    StyleMetric,
    metric_labels,
    score_grid,
)
from lorastrap.clash.options import ClashOptions
from lorastrap.clash.persist import assign_image_paths, persist_run
from lorastrap.clash.report import Advice, advice_variant, build_report, make_advice, verification, visibility_note
from lorastrap.clash.styles import base_of, character_lora, load_registered, resolve_style
from lorastrap.clash.weightspace import WeightSpaceReport, analyse
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.options import recorded
from lorastrap.models.embedding import default_embedder
from lorastrap.models.lora import LoraFile
from lorastrap.models.lora.triggers import propose_trigger
from lorastrap.models.lora.validate import BaseModules
from lorastrap.queries import get_character
from lorastrap.tags import identity_tags
from lorastrap.workspace import Workspace, unit_of_work

DEFAULT_VIEWS = ("front", "from side", "from behind")
VERIFY_SEED_OFFSET = 1000


@dataclass
class StyleRef:
    name: str
    row_id: int
    lora: LoraFile
    path: Path
    trigger: str
    a1111: str
    likely_trigger: str = ""  # the tags in (nearly) every training caption, per the file's metadata


@dataclass
class Context:
    character_id: int
    slug: str
    trigger: str
    base_spec: str
    base: BaseModules
    char_row_id: int
    char_lora: LoraFile
    char_path: Path
    char_a1111: str
    identity_tags: list[str] = field(default_factory=list)
    styles: list[StyleRef] = field(default_factory=list)

    @property
    def arch(self) -> str:
        return self.base.arch


def load_context(ws: Workspace, name: str, style_names: Sequence[str], lora_id: int | None = None) -> Context:
    """Everything a clash needs from the registry, validated against the character's base model
    (errors say what to do next)."""
    if not style_names:
        raise UserError("no style given; pass --styles NAME [NAME…] (see `lorastrap style list`)")
    with ws.session() as s:
        character = get_character(s, name)
        row = character_lora(s, character, lora_id)
        base_spec = character.base_model or ws.config.workspace.base_model
        base = base_of(ws, base_spec)
        char_lora = load_registered(ws, row, base)
        ctx = Context(character.id, character.slug, character.trigger, base_spec, base, row.id, char_lora,
                      ws.abs(row.file_path), Path(row.file_path).stem, identity_tags(character))
        for style_name in dict.fromkeys(style_names):
            style_row = resolve_style(s, style_name)
            lora = load_registered(ws, style_row, base)
            proposal = propose_trigger(lora.metadata)
            ctx.styles.append(StyleRef(style_row.name, style_row.id, lora, ws.abs(style_row.file_path),
                                       (style_row.hyperparams or {}).get("trigger", ""), Path(style_row.file_path).stem,
                                       proposal.phrase if proposal else ""))
    return ctx


def analyse_weights(ws: Workspace, name: str, style_names: Sequence[str], lora_id: int | None = None) -> dict:
    """`clash NAME --weights-only`: the weight-space report of each style, no generation."""
    ctx = load_context(ws, name, style_names, lora_id)
    reports = {st.name: analyse(st.lora, ctx.char_lora) for st in ctx.styles}
    ranked = sorted(reports, key=lambda n: -reports[n].overall_projection_energy)
    return {"character": ctx.slug, "arch": ctx.arch, "lbw_blocks": list(lbw_layout(ctx.arch)),
            "ranking": ranked, "styles": {n: r.to_dict() for n, r in reports.items()}}


def plan_sections(ctx: Context, opts: ClashOptions, weightspace: dict[str, WeightSpaceReport]) -> list[Section]:
    """Baselines, each style weight × character weight, and the candidates measured at the top weight:
    community block-weight presets and a cut of the blocks the weight-space analysis flags."""
    weights = sorted({float(w) for w in opts.weights})
    if not weights or any(w <= 0 for w in weights):
        raise UserError("--weights must be positive numbers, e.g. --weights 0.3,0.6,1.0")
    top, base_cw = weights[-1], float(opts.character_weights[0])
    sections = []
    for st in ctx.styles:
        variants = [Variant(CHARACTER_ONLY, base_cw, 0.0), Variant(STYLE_ONLY, 0.0, top)]
        variants += [Variant(GRID, float(cw), w, label=f"char {cw:g}, style {w:g}")
                     for cw in opts.character_weights for w in weights]
        if opts.presets:
            variants += [variant_with_blocks(f"preset:{p.name}", base_cw, top, p.block_weights(),
                                             label=f"preset {p.name}, style {top:g}") for p in presets_for(ctx.arch)]
        if st.trigger.strip():
            variants.append(Variant(NO_TRIGGER, base_cw, top, label=f"style {top:g}, prompt without {st.trigger!r}",
                                    style_trigger=False))
        flagged = weightspace[st.name].flagged_blocks if st.name in weightspace else []
        if flagged:
            blocks = {**{b: 1.0 for b in lbw_layout(ctx.arch)}, **{b: 0.0 for b in flagged}}
            variants.append(variant_with_blocks("weightspace-cut", base_cw, top, blocks,
                                                label=f"cut {'+'.join(flagged)}, style {top:g}"))
        sections.append(Section(st.name, st.name, st.trigger, variants))
    return sections


def grid_spec(ws: Workspace, ctx: Context, opts: ClashOptions, unet_config: dict, seeds: Sequence[int]) -> GridSpec:
    encoders = ("text_encoder", "text_encoder_2") if ctx.arch == "sdxl" else ("text_encoder",)
    return GridSpec(ctx.slug, ctx.trigger, list(opts.views or DEFAULT_VIEWS), list(seeds), ctx.arch,
                    layout_from_unet_config(unet_config, encoders), ws.config.bootstrap.negative_prompt,
                    opts.steps, opts.cfg, extra_prompt=opts.extra_prompt,
                    a1111_names={ctx.slug: ctx.char_a1111, **{st.name: st.a1111 for st in ctx.styles}})


def _curated(ws: Workspace, slug: str, limit: int = 40) -> list[Image.Image]:
    folder = ws.curated_dir(slug)
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))[:limit] \
        if folder.is_dir() else []
    images = []
    for path in files:
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return images


@dataclass
class Measured:
    cells: list[GridCell]
    scores: dict[tuple[str, str], RowScores]
    advice: dict[str, Advice]  # styles that show; the others have a note instead
    notes: dict[str, str | None]
    verify_sections: list[Section]
    verify_cells: list[GridCell]
    verify_scores: dict[tuple[str, str], RowScores]
    identity: IdentityMetric
    styles: list[StyleMetric]


def measure(ws: Workspace, ctx: Context, gen, sections: Sequence[Section], spec: GridSpec,
            opts: ClashOptions) -> Measured:
    """Generate and score the grid, advise per style, then re-generate the advice on held-out seeds."""
    embedder = CachedEmbedder(default_embedder(opts.clip_model))
    if opts.metrics is None and opts.identity != "embedding":
        raise UserError(f"--identity {opts.identity} needs its metrics (ClashOptions.metrics); the CLI supplies them")
    source = opts.metrics or EmbeddingMetrics()
    identity = source.identity(embedder, ctx.identity_tags)
    styles = {sec.style: metric for sec in sections if (metric := source.style(sec.trigger)) is not None}
    curated = _curated(ws, ctx.slug)
    cells = run_grid(gen, sections, spec, show_progress=opts.show_progress)
    scores = score_grid(cells, identity, embedder, curated, styles)
    likely = {st.name: st.likely_trigger for st in ctx.styles}
    refs = {st.name: str(st.path) for st in ctx.styles}
    notes = {sec.style: visibility_note(sec, scores, likely.get(sec.style, ""), refs.get(sec.style, "PATH"))
             for sec in sections}
    advice = {sec.style: make_advice(sec, scores, opts.threshold, spec, ctx.slug) for sec in sections
              if not notes[sec.style]}
    verify_sections, verify_cells, verify_scores = [], [], {}
    if opts.verify_seeds > 0 and advice:
        seeds = [opts.seed + VERIFY_SEED_OFFSET + i for i in range(opts.verify_seeds)]
        verify_spec = replace(spec, seeds=seeds)
        for sec in (sec for sec in sections if sec.style in advice):
            base = [v for v in sec.variants if v.kind in (CHARACTER_ONLY, STYLE_ONLY)]
            verify_sections.append(Section(sec.style, sec.adapter, sec.trigger, base + [advice_variant(advice[sec.style])]))
        verify_cells = run_grid(gen, verify_sections, verify_spec, show_progress=opts.show_progress)
        for cell in verify_cells:
            cell.extra["phase"] = "verify"
        verify_scores = score_grid(verify_cells, identity, embedder, curated, styles)
        for sec in verify_sections:
            advice[sec.style].verified = verification(advice[sec.style], verify_scores, seeds, opts.threshold)
    return Measured(cells, scores, advice, notes, verify_sections, verify_cells, verify_scores, identity,
                    [styles.get(sec.style) or EmbeddingStyle(embedder) for sec in sections])


def check_budget(sections: Sequence[Section], opts: ClashOptions) -> int:
    """Images the run will make (grid + verification); refused past --max-cells before any loading."""
    views = len(opts.views or DEFAULT_VIEWS)
    total = sum(len(s.variants) for s in sections) * views * opts.seeds + len(sections) * 3 * views * max(0, opts.verify_seeds)
    if total > opts.max_cells:
        raise UserError(f"the grid needs {total} images, more than --max-cells {opts.max_cells}; use fewer "
                        "--weights/--seeds/--views, --no-presets, or raise --max-cells")
    return total


def report_header(ctx: Context, measured: Measured, opts: ClashOptions) -> dict:
    return {
        "character": {"name": ctx.slug, "trigger": ctx.trigger, "lora": str(ctx.char_path), "a1111": ctx.char_a1111,
                      "lora_id": ctx.char_row_id},
        "base_model": ctx.base_spec, "metric": dict(metric_labels(measured.identity, measured.styles)),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "params": recorded(opts),
    }


@dataclass
class ClashOutcome:
    run_id: int
    out_dir: Path
    html: Path
    json: Path
    sheets: dict[str, Path]
    ranking: list[dict]
    advice: list[dict]
    cells: int
    weak_metric: bool
    notes: dict[str, str] = field(default_factory=dict)  # styles that do not show, and why


def default_out(ws: Workspace, slug: str) -> Path:
    return ws.exports_dir(slug) / "clash" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def open_generator(ws: Workspace, ctx: Context, extra: Sequence[tuple[LoraFile, str]] = ()):
    """ONE pipeline with the character LoRA and every style LoRA loaded as named adapters."""
    from lorastrap.models.base import resolve_base_model
    from lorastrap.models.generation import Generator

    gen = Generator(resolve_base_model(ctx.base_spec, ws.root))
    try:
        gen.add_lora(ctx.char_lora, ctx.slug)
        for st in ctx.styles:
            gen.add_lora(st.lora, st.name)
        for lora, adapter in extra:
            gen.add_lora(lora, adapter)
    except BaseException:
        gen.close()
        raise
    return gen


@unit_of_work
def run_clash(ws: Workspace, name: str, opts: ClashOptions) -> ClashOutcome:
    ctx = load_context(ws, name, opts.styles, opts.lora_id)
    weightspace = {st.name: analyse(st.lora, ctx.char_lora) for st in ctx.styles}
    sections = plan_sections(ctx, opts, weightspace)
    out_dir = Path(opts.out) if opts.out else default_out(ws, ctx.slug)
    seeds = [opts.seed + i for i in range(opts.seeds)]
    total = check_budget(sections, opts)
    with open_generator(ws, ctx) as gen:
        spec = grid_spec(ws, ctx, opts, dict(gen.pipe.unet.config), seeds)
        measured = measure(ws, ctx, gen, sections, spec, opts)
    all_cells = measured.cells + measured.verify_cells
    assign_image_paths(all_cells)
    report = build_report(report_header(ctx, measured, opts), sections, measured.cells, measured.scores, spec,
                          ctx.slug, opts.threshold, weightspace, measured.advice, measured.verify_sections,
                          measured.verify_cells, measured.verify_scores, measured.notes)
    summary = {"ranking": report["ranking"], "images": total}
    run_id, files = persist_run(ws, out_dir, report, all_cells, character_id=ctx.character_id,
                                character_lora_id=ctx.char_row_id,
                                style_lora_ids={st.name: st.row_id for st in ctx.styles},
                                params={**report["params"], "kind": "grid", "styles": [st.name for st in ctx.styles],
                                        "views": spec.views, "seeds": spec.seeds},
                                summary=summary)
    return ClashOutcome(run_id, out_dir, files.html, files.json, files.sheets, report["ranking"],
                        [s["advice"] for s in report["styles"] if s["advice"]], len(all_cells), measured.identity.weak,
                        {s["name"]: s["style_note"] for s in report["styles"] if s["style_note"]})
