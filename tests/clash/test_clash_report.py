"""Clash metrics, advice and the report files, on drawn lab-world images (no diffusion model)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from game_export.clash_report import write_clash_report
from lorastrap.clash.blocks import STANDARD_LAYOUTS
from lorastrap.clash.grid import (
    CHARACTER_ONLY,
    GRID,
    STYLE_ONLY,
    GridCell,
    GridSpec,
    Section,
    Variant,
    variant_with_blocks,
)
from lorastrap.clash.metrics import (
    CachedEmbedder,
    CellScores,
    EmbeddingIdentity,
    EmbeddingMetrics,
    IdentityMetric,
    StyleMetric,
    row_scores,
    score_grid,
)
from lorastrap.clash.persist import assign_image_paths
from lorastrap.clash.report import build_report, choose, make_advice, max_safe_weight, mean_clash
from lorastrap.kernel.pngmeta import png_bytes
from lorastrap.lab.scoring import ReaderIdentity, ReaderMetrics, ReaderStyle
from lorastrap.lab.world import HELD_OUT, draw
from lorastrap.models.embedding import ColorStructureEmbedder
from lorastrap.models.generation import GeneratedImage

KITSUNE, OTHER = HELD_OUT[0], HELD_OUT[3]


def _rows(identity: list[float], style: list[float]) -> list[CellScores]:
    return [CellScores(i, s) for i, s in zip(identity, style)]


def test_retention_and_style_gain_scale_between_the_baselines():
    char, style_only = _rows([1.0, 1.0], [0.6, 0.6]), _rows([0.5, 0.5], [1.0, 1.0])
    half = row_scores(_rows([0.75, 0.75], [0.8, 0.8]), char, style_only)
    assert half.retention == pytest.approx(0.5) and half.style_gain == pytest.approx(0.5)
    assert half.clash == pytest.approx(0.25)
    assert row_scores(char, char, style_only).retention == 1.0
    assert row_scores(style_only, char, style_only).retention == 0.0
    assert row_scores(_rows([0.3], [1.0]), char, style_only).retention == 0.0  # clipped
    # A style that barely changes anything: a 0.001 drop is noise, not a clash.
    barely = row_scores(_rows([0.999], [0.9995]), _rows([1.0], [0.999]), _rows([0.998], [1.0]))
    assert barely.retention == pytest.approx(0.95) and barely.style_gain < 0.1


def test_identity_metrics_are_pluggable_and_tell_characters_apart():
    same = [draw(KITSUNE, "from side", "flat color", seed=s) for s in (1, 2)]
    other = draw(OTHER, "from side", "flat color", seed=1)
    reference = draw(KITSUNE, "from front", "flat color", seed=3)
    embedding = EmbeddingIdentity(ColorStructureEmbedder())
    reader = ReaderIdentity(KITSUNE)
    for metric in (embedding, reader):
        assert isinstance(metric, IdentityMetric)
        scores = metric.score([same[0], same[1], other], [reference] * 3)
        assert scores[0] > scores[2] and scores[1] > scores[2], metric.name
    assert embedding.weak and not reader.weak
    assert reader.score([same[0]], [reference])[0] == pytest.approx(1.0)
    pixel = ReaderStyle("pixel art")
    assert isinstance(pixel, StyleMetric)
    flat, pixelated = same[0], draw(KITSUNE, "from side", "pixel art", seed=1)
    assert pixel.score([pixelated], [flat])[0] > pixel.score([flat], [flat])[0]
    with pytest.raises(ValueError, match="not a lab style"):
        ReaderStyle("watercolor")


def _cell(style: str, variant: Variant, view: str, seed: int, image) -> GridCell:
    return GridCell(style, variant, view, seed, f"kitsune, {view}", GeneratedImage(image, "params", {"seed": seed}))


def _section() -> tuple[Section, list[GridCell]]:
    """A fake 'pixel art' style: cells are lab drawings whose identity fades with the style weight."""
    variants = [Variant(CHARACTER_ONLY, 1.0, 0.0), Variant(STYLE_ONLY, 0.0, 1.0), Variant(GRID, 1.0, 0.5),
                Variant(GRID, 1.0, 1.0), variant_with_blocks("preset:OUTS", 1.0, 1.0, {"IN01": 0.0, "M00": 0.0})]
    looks = {CHARACTER_ONLY: (KITSUNE, "flat color"), STYLE_ONLY: (OTHER, "pixel art")}
    cells = []
    for v in variants:
        for view in ("from front", "from side"):
            for seed in (1, 2):
                if v.kind in looks:
                    who, style = looks[v.kind]
                else:
                    who, style = (OTHER, "pixel art") if v.style_weight == 1.0 and v.kind == GRID else (KITSUNE, "pixel art")
                cells.append(_cell("pixel", v, view, seed, draw(who, view, style, seed)))
    return Section("pixel", "pixel", "pixel art", variants), cells


def _spec() -> GridSpec:
    return GridSpec("kitsune", "kitsune", ["from front", "from side"], [1, 2], "sd15", STANDARD_LAYOUTS["sd15"],
                    a1111_names={"kitsune": "kitsune-character", "pixel": "pixel_v2"})


def test_score_grid_advice_and_ranking():
    section, cells = _section()
    embedder = CachedEmbedder(ColorStructureEmbedder())
    scores = score_grid(cells, EmbeddingIdentity(embedder), embedder)
    row = {v.kind + str(v.style_weight): scores[("pixel", v.key)] for v in section.variants}
    assert row["character-only0.0"].retention == 1.0 and row["style-only1.0"].retention == 0.0
    assert row["grid0.5"].retention > row["grid1.0"].retention
    assert all(c.scores is not None for c in cells)
    threshold = (row["grid0.5"].retention + row["grid1.0"].retention) / 2
    assert max_safe_weight(section, scores, threshold) == 0.5
    assert mean_clash(section, scores) > 0
    variant, best, passed, reason = choose(section, scores, threshold)
    assert passed and best.retention >= threshold and "keeps identity" in reason
    advice = make_advice(section, scores, threshold, _spec(), "kitsune")
    assert advice.a1111.startswith("<lora:kitsune-character:1> <lora:pixel_v2:")
    assert set(advice.diffusers) == {"kitsune", "pixel"}
    _, _, passed, reason = choose(section, scores, 1.01)
    assert not passed and "clash fix" in reason


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_files_render_every_cell(tmp_path):
    section, cells = _section()
    embedder = CachedEmbedder(ColorStructureEmbedder())
    identity = EmbeddingIdentity(embedder)
    scores = score_grid(cells, identity, embedder, style_metrics={"pixel": ReaderStyle("pixel art")})
    assign_image_paths(cells)
    for cell in cells:
        path = tmp_path / cell.extra["image"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(cell.generated.image))
    spec = _spec()
    advice = {"pixel": make_advice(section, scores, 0.5, spec, "kitsune")}
    header = {"character": {"name": "kitsune", "lora": "k.safetensors"}, "base_model": "tiny",
              "metric": {"identity_metric": identity.name, "style_metric": "lab style reader (pixel art)",
                         "weak": "true", "note": "WEAK metric"}}
    report = build_report(header, [section], cells, scores, spec, "kitsune", 0.5, {}, advice)
    files = write_clash_report(report, tmp_path)
    parsed = json.loads(files.json.read_text())
    assert len(parsed["styles"][0]["cells"]) == 5 * 4 and parsed["styles"][0]["sheet"] == "sheets/pixel.png"
    assert files.sheets["pixel"].is_file()
    html = _Collect()
    html.feed(files.html.read_text())
    assert sum(s.startswith("data:image/png;base64,") for s in html.imgs) == 20
    assert "sheets/pixel.png" in html.imgs
    text = " ".join(html.text)
    assert "WEAK metric" in text and "lbw=" in text and "Ranking" in text and "lab style reader" in text
    # The lab style reader sees pixel art in the style-only row, not in the character-only row.
    rows = {r["kind"]: r["scores"] for r in parsed["styles"][0]["rows"]}
    assert rows["style-only"]["style"] > rows["character-only"]["style"]


def test_identity_metric_choice():
    from lorastrap.cli.clash import metric_source
    from lorastrap.kernel.errors import UserError

    embedder = CachedEmbedder(ColorStructureEmbedder())
    assert metric_source("embedding") is None  # the clash run's default: EmbeddingMetrics
    assert isinstance(EmbeddingMetrics().identity(embedder, []), EmbeddingIdentity)
    source = metric_source("lab-reader")
    assert isinstance(source, ReaderMetrics)
    reader = source.identity(embedder, KITSUNE.tags())
    assert isinstance(reader, ReaderIdentity) and not reader.weak
    assert isinstance(source.style("pixel art"), ReaderStyle) and source.style("watercolor") is None
    with pytest.raises(UserError, match="use embedding or lab-reader"):
        metric_source("faces")
