"""Weight-space maths of the clash report on constructed LoRAs with known geometry."""

from __future__ import annotations

import math

import pytest
import torch

from lorastrap.clash.projection import compat_lora, project_out
from lorastrap.clash.synthetic import lora_from_modules, random_lora
from lorastrap.clash.weightspace import analyse, compare_module, module_delta, principal_cosines

OUT, IN, RANK = 48, 40, 4
Q_KEY = "unet.down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
K_KEY = "unet.up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"


def _basis(dim: int, cols: list[int]) -> torch.Tensor:
    return torch.eye(dim)[:, cols]


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _single(up: torch.Tensor, down: torch.Tensor, alpha: float = RANK, key: str = Q_KEY):
    return lora_from_modules({key: (down, up, alpha)})


def _dense_projection_energy(style: torch.Tensor, character: torch.Tensor) -> float:
    u, s, _ = torch.linalg.svd(character)
    basis = u[:, : int((s > s[0] * 1e-6).sum())]
    return float((basis.T @ style).pow(2).sum() / style.pow(2).sum())


def test_identical_loras_have_cosine_one_and_full_overlap():
    lora = _single(_rand(OUT, RANK, seed=1), _rand(RANK, IN, seed=2))
    row = compare_module(lora.modules[Q_KEY], lora.modules[Q_KEY])
    assert row.cosine == pytest.approx(1.0, abs=1e-9)
    assert row.projection_energy == pytest.approx(1.0, abs=1e-9)
    assert row.subspace_overlap == pytest.approx(1.0, abs=1e-9)
    assert row.min_angle_deg == pytest.approx(0.0, abs=1e-3)


def test_negated_lora_has_cosine_minus_one():
    up, down = _rand(OUT, RANK, seed=1), _rand(RANK, IN, seed=2)
    row = compare_module(_single(up, down).modules[Q_KEY], _single(-up, down).modules[Q_KEY])
    assert row.cosine == pytest.approx(-1.0, abs=1e-9)


def test_orthogonal_subspaces_give_zero():
    char = _single(_basis(OUT, [0, 1, 2, 3]) @ _rand(RANK, RANK, seed=3), _rand(RANK, IN, seed=4))
    style = _single(_basis(OUT, [4, 5, 6, 7]) @ _rand(RANK, RANK, seed=5), _rand(RANK, IN, seed=6))
    row = compare_module(style.modules[Q_KEY], char.modules[Q_KEY])
    assert row.cosine == pytest.approx(0.0, abs=1e-9)
    assert row.projection_energy == pytest.approx(0.0, abs=1e-12)
    assert row.subspace_overlap == pytest.approx(0.0, abs=1e-12)
    assert row.min_angle_deg == pytest.approx(90.0, abs=1e-6)
    assert row.chance == pytest.approx(RANK / OUT)


def test_thin_formulas_match_dense_maths():
    a = _single(_rand(OUT, RANK, seed=7), _rand(RANK, IN, seed=8), alpha=2.0)
    b = _single(_rand(OUT, 6, seed=9), _rand(6, IN, seed=10), alpha=12.0)
    ma, mb = a.modules[Q_KEY], b.modules[Q_KEY]
    da, db = ma.delta(), mb.delta()
    assert torch.allclose(da, 0.5 * ma.up_matrix() @ ma.down_matrix())  # alpha/rank scaling
    row = compare_module(ma, mb)
    dense_cos = float((da * db).sum() / (da.norm() * db.norm()))
    assert row.cosine == pytest.approx(dense_cos, abs=1e-9)
    assert row.projection_energy == pytest.approx(_dense_projection_energy(da, db), abs=1e-9)
    qa, _ = torch.linalg.qr(ma.up_matrix())
    qb, _ = torch.linalg.qr(mb.up_matrix())
    dense_cosines = torch.linalg.svdvals(qa.T @ qb)
    assert torch.allclose(principal_cosines(module_delta(ma), module_delta(mb)), dense_cosines, atol=1e-9)
    assert torch.allclose(module_delta(ma).dense(), da, atol=1e-12)


def test_partial_overlap_is_the_shared_fraction():
    # Style writes half its energy into the character's first two directions, half outside.
    char = _single(_basis(OUT, [0, 1]) * 3.0, _basis(IN, [0, 1]).T.contiguous(), alpha=2.0)
    style = _single(_basis(OUT, [1, 10]), _basis(IN, [5, 6]).T.contiguous(), alpha=2.0)
    row = compare_module(style.modules[Q_KEY], char.modules[Q_KEY])
    assert row.projection_energy == pytest.approx(0.5, abs=1e-9)
    assert row.cosine == pytest.approx(0.0, abs=1e-9)  # different input directions: no alignment
    assert row.min_angle_deg == pytest.approx(0.0, abs=1e-6)
    assert row.subspace_overlap == pytest.approx(0.5, abs=1e-9)


def test_fix_removes_overlap_and_keeps_the_rest():
    char_up = _rand(OUT, RANK, seed=11)
    style_up = torch.cat([char_up[:, :2] @ _rand(2, 2, seed=12), _rand(OUT, RANK - 2, seed=13)], dim=1)
    char = _single(char_up, _rand(RANK, IN, seed=14))
    style = _single(style_up, _rand(RANK, IN, seed=15), alpha=1.0)
    before = compare_module(style.modules[Q_KEY], char.modules[Q_KEY]).projection_energy
    assert before > 0.2
    fixed = project_out(style.modules[Q_KEY], char.modules[Q_KEY])
    after = compare_module(fixed, char.modules[Q_KEY]).projection_energy
    assert after == pytest.approx(0.0, abs=1e-10)
    assert fixed.rank == RANK and fixed.alpha == RANK  # same rank, scale folded in
    # What is left is exactly the style's update outside the character's column space.
    q, _ = torch.linalg.qr(char.modules[Q_KEY].up_matrix())
    expected = style.modules[Q_KEY].delta() - q @ (q.T @ style.modules[Q_KEY].delta())
    assert torch.allclose(fixed.delta(), expected, atol=1e-6)
    assert expected.norm() > 0.3 * style.modules[Q_KEY].delta().norm()


def test_fix_leaves_orthogonal_style_and_untouched_modules_unchanged():
    char = lora_from_modules({Q_KEY: (_rand(RANK, IN, seed=1), _basis(OUT, [0, 1, 2, 3]), RANK)})
    style = lora_from_modules({
        Q_KEY: (_rand(RANK, IN, seed=2), _basis(OUT, [8, 9, 10, 11]) * 0.5, RANK),
        K_KEY: (_rand(RANK, IN, seed=3), _rand(OUT, RANK, seed=4), RANK),
    })
    result = compat_lora(style, char)
    assert torch.allclose(result.lora.modules[Q_KEY].delta(), style.modules[Q_KEY].delta(), atol=1e-6)
    assert result.lora.modules[K_KEY] is style.modules[K_KEY]
    assert result.kept_energy == pytest.approx(1.0, abs=1e-6)
    assert result.changed_modules == 1 and result.blocks == ["IN01"]


def test_fix_on_random_loras_drives_energy_to_zero():
    shapes = {Q_KEY: (OUT, IN), K_KEY: (64, 32)}
    style, char = random_lora(shapes, rank=8, seed=1), random_lora(shapes, rank=8, seed=2)
    result = compat_lora(style, char)
    assert result.energy_before == pytest.approx(analyse(style, char).overall_projection_energy, rel=1e-9)
    assert result.energy_after == pytest.approx(0.0, abs=1e-10)
    assert 0.5 < result.kept_energy < 1.0
    again = analyse(result.lora, char)
    assert again.overall_projection_energy == pytest.approx(0.0, abs=1e-10)


def test_blocks_aggregate_and_flag_where_the_style_overlaps():
    shapes = {Q_KEY: (OUT, IN), K_KEY: (OUT, IN)}
    char = random_lora(shapes, rank=RANK, seed=3)
    # In IN01 the style reuses the character's update; in OUT03 it is independent.
    style = lora_from_modules({
        Q_KEY: (char.modules[Q_KEY].down, char.modules[Q_KEY].up * 2.0, RANK),
        K_KEY: (_rand(RANK, IN, seed=9), _basis(OUT, [40, 41, 42, 43]) * 0.05, RANK),
    })
    report = analyse(style, char)
    by_block = {b.block: b for b in report.blocks}
    assert [b.block for b in report.blocks] == ["IN01", "OUT03"]  # LBW order
    assert by_block["IN01"].flagged and by_block["IN01"].cosine == pytest.approx(1.0, abs=1e-9)
    assert by_block["IN01"].magnitude_ratio == pytest.approx(2.0, rel=1e-6)
    assert not by_block["OUT03"].flagged
    assert report.flagged_blocks == ["IN01"]
    assert sum(b.style_share for b in report.blocks) == pytest.approx(1.0)
    assert report.shared_modules == 2 and report.to_dict()["flagged_blocks"] == ["IN01"]
    assert math.isfinite(report.overall_cosine)
