"""The clash grid: rows of (character weight, style weight, style block weights), columns of
views × seeds, generated with ONE loaded pipeline.

Every LoRA is loaded once as a named adapter; a row only switches weights with `set_adapters`
(milliseconds), never reloads. The same seeds are used in every row, so a column compares the same
starting noise under different weights. Identical (prompt, weights, seed) cells are generated once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from lorastrap.clash.blocks import UnetLayout, diffusers_block_weights, lbw_string
from lorastrap.kernel.progress import progress_bar
from lorastrap.models.generation import GeneratedImage, Generator, GenRequest

CHARACTER_ONLY = "character-only"
STYLE_ONLY = "style-only"
GRID = "grid"
NO_TRIGGER = "no-trigger"


@dataclass(frozen=True)
class Variant:
    """One row of a style's section."""

    kind: str  # character-only | style-only | grid | preset:<NAME> | weightspace-cut | advice | fix
    character_weight: float
    style_weight: float
    blocks: tuple[tuple[str, float], ...] = ()  # LBW block multipliers of the style; () = all 1
    adapter: str | None = None  # the adapter that plays the style (None: the section's)
    label: str = ""
    # False: the prompt leaves out the style's trigger words (the LoRA alone carries the style);
    # words a text encoder does not know can cost more identity than the style LoRA itself
    style_trigger: bool = True

    @property
    def block_weights(self) -> dict[str, float]:
        return dict(self.blocks)

    @property
    def key(self) -> str:
        key = f"{self.kind}|c{self.character_weight:g}|s{self.style_weight:g}|{self.adapter or ''}"
        return key if self.style_trigger else key + "|no-trigger"

    def title(self) -> str:
        if self.label:
            return self.label
        if self.kind == CHARACTER_ONLY:
            return f"character only ({self.character_weight:g})"
        if self.kind == STYLE_ONLY:
            return f"style only ({self.style_weight:g})"
        return f"{self.kind} c{self.character_weight:g} s{self.style_weight:g}"


def variant_with_blocks(kind: str, character_weight: float, style_weight: float,
                        blocks: Mapping[str, float], label: str = "", adapter: str | None = None) -> Variant:
    return Variant(kind, character_weight, style_weight, tuple(sorted(blocks.items())), adapter, label)


@dataclass
class Section:
    """All rows of one style: its adapter, trigger words and variants (baselines first)."""

    style: str
    adapter: str
    trigger: str
    variants: list[Variant]


@dataclass
class GridSpec:
    character_adapter: str
    character_trigger: str
    views: Sequence[str]
    seeds: Sequence[int]
    arch: str
    layout: UnetLayout
    negative_prompt: str = ""
    steps: int = 20
    cfg: float = 6.0
    width: int | None = None
    height: int | None = None
    extra_prompt: str = ""
    a1111_names: dict[str, str] = field(default_factory=dict)  # adapter → LoRA file stem A1111 uses

    def a1111_name(self, adapter: str) -> str:
        return self.a1111_names.get(adapter, adapter)

    def prompt(self, view: str, style_trigger: str) -> str:
        parts = [self.character_trigger, view, style_trigger, self.extra_prompt]
        return ", ".join(p.strip() for p in parts if p and p.strip())


@dataclass
class GridCell:
    style: str
    variant: Variant
    view: str
    seed: int
    prompt: str
    generated: GeneratedImage
    scores: object | None = None  # metrics.CellScores, filled in after generation
    extra: dict = field(default_factory=dict)


def section_trigger(variant: Variant, section: Section) -> str:
    """The style's trigger words as this row prompts them (empty for a no-trigger row)."""
    return section.trigger if variant.style_trigger else ""


def adapter_weights(variant: Variant, section: Section, spec: GridSpec) -> dict[str, float | dict]:
    """The `set_weights` argument of a row: only the LoRAs with a non-zero weight are active."""
    weights: dict[str, float | dict] = {}
    if variant.character_weight:
        weights[spec.character_adapter] = float(variant.character_weight)
    if variant.style_weight:
        adapter = variant.adapter or section.adapter
        blocks = variant.block_weights
        weights[adapter] = (diffusers_block_weights(variant.style_weight, blocks, spec.arch, spec.layout)
                            if blocks else float(variant.style_weight))
    return weights


def a1111_prompt(variant: Variant, section: Section, spec: GridSpec, character_name: str, view: str) -> str:
    """The same row as an A1111/Forge prompt (LBW syntax for per-block style weights)."""
    prompt = spec.prompt(view, section_trigger(variant, section))
    if variant.character_weight:
        prompt += f" <lora:{spec.a1111_name(character_name)}:{variant.character_weight:g}>"
    if variant.style_weight:
        blocks = variant.block_weights
        name = spec.a1111_name(variant.adapter or section.adapter)
        prompt += " " + (lbw_string(name, variant.style_weight, blocks, spec.arch) if blocks
                         else f"<lora:{name}:{variant.style_weight:g}>")
    return prompt


def _signature(prompt: str, weights: Mapping[str, object], seed: int) -> str:
    return repr((prompt, sorted((k, repr(v)) for k, v in weights.items()), seed))


def count_cells(sections: Sequence[Section], spec: GridSpec) -> int:
    return sum(len(s.variants) for s in sections) * len(spec.views) * len(spec.seeds)


def run_grid(generator: Generator, sections: Sequence[Section], spec: GridSpec,
             on_row: Callable[[Section, Variant], None] | None = None, show_progress: bool = True) -> list[GridCell]:
    """Generate every (section, variant, view, seed) cell with the one loaded `generator`."""
    memo: dict[str, GeneratedImage] = {}
    cells: list[GridCell] = []
    total = count_cells(sections, spec)
    with progress_bar(total, "clash grid", "img", enabled=show_progress) as bar:
        for section in sections:
            for variant in section.variants:
                weights = adapter_weights(variant, section, spec)
                columns = [(view, seed, spec.prompt(view, section_trigger(variant, section))) for view in spec.views for seed in spec.seeds]
                todo = [c for c in columns if _signature(c[2], weights, c[1]) not in memo]
                if todo:
                    generator.set_weights(weights)
                    requests = [
                        GenRequest(prompt=prompt, negative_prompt=spec.negative_prompt, seed=seed, steps=spec.steps,
                                   cfg=spec.cfg, width=spec.width, height=spec.height, view=view,
                                   extra={"clash": {"style": section.style, "variant": variant.kind,
                                                    "character_weight": variant.character_weight,
                                                    "style_weight": variant.style_weight,
                                                    "blocks": variant.block_weights or None}})
                        for view, seed, prompt in todo
                    ]
                    for (view, seed, prompt), result in zip(todo, generator.generate(requests)):
                        memo[_signature(prompt, weights, seed)] = result
                for view, seed, prompt in columns:
                    cells.append(GridCell(section.style, variant, view, seed, prompt,
                                          memo[_signature(prompt, weights, seed)]))
                bar.update(len(columns))
                if on_row:
                    on_row(section, variant)
    return cells
