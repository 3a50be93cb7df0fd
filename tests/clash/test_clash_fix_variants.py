"""The clash fix's projection sides (column / row / both) on constructed LoRAs, checked against
dense projections."""

from __future__ import annotations

import pytest
import torch

from lorastrap.clash.projection import compat_lora, compat_metadata, project_out
from lorastrap.clash.synthetic import lora_from_modules, random_lora

OUT, IN, RANK = 48, 40, 4
KEY = "unet.up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
KEY2 = "unet.down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _projector(matrix: torch.Tensor) -> torch.Tensor:
    """Dense orthogonal projector onto col(matrix)."""
    q, _ = torch.linalg.qr(matrix)
    return q @ q.T


@pytest.fixture
def pair():
    """A style sharing two output AND two input directions with the character."""
    char_up, char_down = _rand(OUT, RANK, seed=1), _rand(RANK, IN, seed=2)
    style_up = torch.cat([char_up[:, :2] @ _rand(2, 2, seed=3), _rand(OUT, RANK - 2, seed=4)], dim=1)
    style_down = torch.cat([_rand(2, 2, seed=5) @ char_down[:2], _rand(RANK - 2, IN, seed=6)], dim=0)
    char = lora_from_modules({KEY: (char_down, char_up, RANK)})
    style = lora_from_modules({KEY: (style_down, style_up, 2.0)})
    return style.modules[KEY], char.modules[KEY]


@pytest.mark.parametrize("sides", ["column", "row", "both"])
def test_each_side_equals_the_dense_projection(pair, sides):
    style, char = pair
    p_col = _projector(char.up_matrix()) if sides != "row" else torch.zeros(OUT, OUT, dtype=torch.float64)
    p_row = _projector(char.down_matrix().T) if sides != "column" else torch.zeros(IN, IN, dtype=torch.float64)
    expected = (torch.eye(OUT, dtype=torch.float64) - p_col) @ style.delta() @ (torch.eye(IN, dtype=torch.float64) - p_row)
    fixed = project_out(style, char, sides=sides)
    assert torch.allclose(fixed.delta(), expected, atol=1e-5)
    assert fixed.rank == RANK and fixed.alpha == RANK
    assert expected.norm() > 0.2 * style.delta().norm()  # the projection kept something


def test_two_sided_is_orthogonal_to_the_character_on_both_sides(pair):
    style, char = pair
    fixed = project_out(style, char, sides="both").delta()
    up, down = char.up_matrix(), char.down_matrix()
    # nothing written into the character's outputs, nothing read from its inputs…
    assert (up.T @ fixed).abs().max() < 1e-5 * fixed.abs().max()
    assert (fixed @ down.T).abs().max() < 1e-5 * fixed.abs().max()
    # …and what the character's update feeds the next layer is unaffected: ΔW_cᵀ ΔW_s' = ΔW_s' ΔW_cᵀ = 0
    assert (char.delta().T @ fixed).abs().max() < 1e-5
    assert (fixed @ char.delta().T).abs().max() < 1e-5
    # the column-only fix leaves the input-side overlap in place
    column = project_out(style, char, sides="column").delta()
    assert (column @ down.T).abs().max() > 1e-2


def test_compat_lora_reports_both_sides_and_labels_the_file():
    shapes = {KEY: (OUT, IN), KEY2: (64, 32)}
    style, char = random_lora(shapes, rank=8, seed=1), random_lora(shapes, rank=8, seed=2)
    column, both = compat_lora(style, char), compat_lora(style, char, sides="both")
    assert column.sides == "column" and both.sides == "both"
    assert column.energy_after == pytest.approx(0.0, abs=1e-10)
    assert column.row_energy_after > 0.05  # column-only still reads the character's inputs
    assert both.energy_after == pytest.approx(0.0, abs=1e-10)
    assert both.row_energy_after == pytest.approx(0.0, abs=1e-10)
    assert both.row_energy_before == pytest.approx(column.row_energy_before, rel=1e-9)
    assert both.kept_energy < column.kept_energy
    meta = compat_metadata(style, both, "watercolor", "kitsune")
    assert meta["lorastrap.compat_sides"] == "both"
    assert meta["lorastrap.compat_method"] == "subspace-projection-both"
    assert compat_metadata(style, column, "w", "k")["lorastrap.compat_method"] == "subspace-projection"


def test_unknown_side_is_refused(pair):
    with pytest.raises(ValueError, match="sides must be one of"):
        project_out(*pair, sides="left")


def test_drop_trigger_empties_the_trigger_phrase_and_keeps_it_on_record():
    shapes = {KEY: (OUT, IN)}
    style, char = random_lora(shapes, rank=4, seed=1), random_lora(shapes, rank=4, seed=2)
    style.metadata["modelspec.trigger_phrase"] = "pixel art"
    result = compat_lora(style, char)
    assert compat_metadata(style, result, "px", "k")["modelspec.trigger_phrase"] == "pixel art"
    meta = compat_metadata(style, result, "px", "k", drop_trigger=True)
    assert meta["modelspec.trigger_phrase"] == ""
    assert meta["lorastrap.compat_dropped_trigger"] == "pixel art"
