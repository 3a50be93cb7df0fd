"""Weight-space overlap of a style LoRA with a character LoRA, without generating anything.

For every module both LoRAs touch, ΔW = (alpha/rank)·up·down of each is kept as a thin SVD
(L·diag(s)·Vᵀ with L, V orthonormal, at most rank columns), so nothing of size out×in is ever
formed. From it:
- cosine: ⟨ΔW_style, ΔW_char⟩_F / (‖ΔW_style‖·‖ΔW_char‖): do they push the same weights the same way;
- principal angles between the two column (output) subspaces (Björck & Golub 1973): cosᵢ = σᵢ(L_sᵀ L_c);
- projection energy ‖P_c ΔW_style‖²/‖ΔW_style‖², P_c the projector onto the character's column
  subspace: the share of the style's update that writes into the directions the character writes.
  Random subspaces give rank_c/out on average ("chance"), reported beside it.
Blocks (LBW names) aggregate modules by energy; a block is flagged when the style writes into the
character's subspace well above chance or along the character's own update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch

from lorastrap.clash.blocks import block_of, lbw_layout
from lorastrap.kernel.progress import progress_bar
from lorastrap.models.lora import LoraFile, LoraModule

FLAG_ENERGY = 0.2  # share of the style's update inside the character subspace that is flagged…
FLAG_CHANCE_RATIO = 2.0  # …when it is also this many times what random subspaces would give
FLAG_COSINE = 0.2  # |cosine| of the two updates that is flagged on its own
MIN_STYLE_SHARE = 0.01  # blocks carrying less of the style's energy than this are never flagged


@contextlib.contextmanager
def few_threads(n: int = 1) -> Iterator[None]:
    """Run torch on `n` intra-op threads for a while: the maths here is many r×r products, which
    threads do not speed up, and on a busy machine idle OpenMP workers spinning for a core made the
    same report up to 40× slower (measured: 4–10 s with 2 threads vs 0.1 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class ThinDelta:
    """ΔW = basis · diag(sigma) · rows, with orthonormal basis columns and rows (float64)."""

    basis: torch.Tensor  # [out, k]
    sigma: torch.Tensor  # [k]
    rows: torch.Tensor  # [k, in]

    @property
    def energy(self) -> float:
        return float((self.sigma ** 2).sum())

    def dense(self) -> torch.Tensor:
        return self.basis @ torch.diag(self.sigma) @ self.rows


def _kept(sigma: torch.Tensor, energy: float) -> int:
    """How many singular values span the subspace: all numerically non-zero ones, or fewer that
    still hold `energy` of the squared norm when energy < 1."""
    if sigma.numel() == 0 or float(sigma[0]) == 0.0:
        return 0
    nonzero = int((sigma > sigma[0] * 1e-6).sum())
    if energy >= 1.0:
        return nonzero
    cumulative = torch.cumsum(sigma ** 2, 0) / (sigma ** 2).sum()
    return min(nonzero, int((cumulative < energy).sum()) + 1)


def thin_svd(left: torch.Tensor, right: torch.Tensor, energy: float = 1.0) -> ThinDelta:
    """Thin SVD of left @ right (left [out, r], right [r, in]) from r×r Gram matrices only.

    An orthonormal basis of col(left) comes from the eigenvectors of leftᵀleft, the singular vectors
    of the small core from those of core·coreᵀ. Both are r×r eigenproblems, so a 1280×5120 layer
    costs about as much as a 32×32 one; float64 keeps the squared condition number harmless at the
    1e-6 relative cut-off used for "numerically zero".
    """
    lam, p = torch.linalg.eigh(left.T @ left)
    top = float(lam.max()) if lam.numel() else 0.0
    if top <= 0.0:
        return ThinDelta(left.new_zeros(left.shape[0], 0), left.new_zeros(0), right.new_zeros(0, right.shape[1]))
    keep = lam > top * 1e-12
    p, root = p[:, keep], lam[keep].sqrt()
    basis = left @ (p / root)  # orthonormal columns spanning col(left)
    core = root[:, None] * (p.T @ right)  # left @ right == basis @ core
    mu, u = torch.linalg.eigh(core @ core.T)
    mu, u = mu.flip(0), u.flip(1)  # descending, like an SVD
    sigma = mu.clamp(min=0.0).sqrt()
    k = _kept(sigma, energy)
    u, sigma = u[:, :k], sigma[:k]
    return ThinDelta(basis @ u, sigma, (u.T @ core) / sigma[:, None])


def module_delta(module: LoraModule, energy: float = 1.0) -> ThinDelta:
    return thin_svd(module.up_matrix(), module.scale * module.down_matrix(), energy)


def inner(a: ThinDelta, b: ThinDelta) -> float:
    """Frobenius ⟨A, B⟩ = tr(diag(sa) LaᵀLb diag(sb) VbᵀVa), all k×k."""
    left = (a.basis.T @ b.basis) * a.sigma[:, None] * b.sigma[None, :]
    return float((left * (a.rows @ b.rows.T)).sum())


def projection_energy(target: ThinDelta, onto: ThinDelta) -> float:
    """‖P_onto · target‖² / ‖target‖²: the share of `target` inside `onto`'s column subspace."""
    total = target.energy
    if total == 0.0 or onto.basis.shape[1] == 0:
        return 0.0
    inside = ((onto.basis.T @ target.basis) * target.sigma[None, :]).pow(2).sum()
    return float(inside) / total


def principal_cosines(a: ThinDelta, b: ThinDelta) -> torch.Tensor:
    """Cosines of the principal angles between the two column subspaces, largest first."""
    if a.basis.shape[1] == 0 or b.basis.shape[1] == 0:
        return torch.zeros(0, dtype=torch.float64)
    return torch.linalg.svdvals(a.basis.T @ b.basis).clamp(0.0, 1.0)


@dataclass
class ModuleOverlap:
    key: str
    block: str | None
    cosine: float
    projection_energy: float
    chance: float
    subspace_overlap: float  # mean cos² of the principal angles, 0 (orthogonal) … 1 (same subspace)
    min_angle_deg: float
    style_energy: float
    character_energy: float


@dataclass
class BlockOverlap:
    block: str
    modules: int
    cosine: float
    projection_energy: float
    chance: float
    style_share: float  # this block's share of the style's energy in the modules both touch
    magnitude_ratio: float  # ‖ΔW_style‖ / ‖ΔW_char‖ over the block
    flagged: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class WeightSpaceReport:
    arch: str | None
    shared_modules: int
    style_only_modules: int
    character_only_modules: int
    overall_cosine: float
    overall_projection_energy: float
    blocks: list[BlockOverlap]
    modules: list[ModuleOverlap]

    @property
    def flagged_blocks(self) -> list[str]:
        return [b.block for b in self.blocks if b.flagged]

    def to_dict(self, with_modules: bool = False) -> dict:
        data = asdict(self)
        data["flagged_blocks"] = self.flagged_blocks
        if not with_modules:
            data.pop("modules")
        return data


def compare_module(style: LoraModule, character: LoraModule, energy: float = 1.0) -> ModuleOverlap:
    s, c = module_delta(style), module_delta(character, energy)
    denom = (s.energy * c.energy) ** 0.5
    cosines = principal_cosines(s, c)
    overlap = float((cosines ** 2).sum()) / max(1, min(s.basis.shape[1], c.basis.shape[1]))
    min_angle = float(torch.rad2deg(torch.arccos(cosines[0]))) if cosines.numel() else 90.0
    return ModuleOverlap(
        key=style.key, block=block_of(style.key),
        cosine=inner(s, c) / denom if denom else 0.0,
        projection_energy=projection_energy(s, c),
        chance=c.basis.shape[1] / style.out_features,
        subspace_overlap=overlap, min_angle_deg=min_angle,
        style_energy=s.energy, character_energy=c.energy,
    )


def _block_summary(block: str, rows: list[ModuleOverlap], inner_sum: float, total_style: float) -> BlockOverlap:
    se = sum(m.style_energy for m in rows)
    ce = sum(m.character_energy for m in rows)
    energy = sum(m.projection_energy * m.style_energy for m in rows) / se if se else 0.0
    chance = sum(m.chance * m.style_energy for m in rows) / se if se else 0.0
    cosine = inner_sum / (se * ce) ** 0.5 if se and ce else 0.0
    share = se / total_style if total_style else 0.0
    reasons: list[str] = []
    if share >= MIN_STYLE_SHARE:
        if energy >= FLAG_ENERGY and energy >= FLAG_CHANCE_RATIO * chance:
            reasons.append(f"{energy:.0%} of the style's update lies in the character's subspace (chance {chance:.0%})")
        if abs(cosine) >= FLAG_COSINE:
            reasons.append(f"style and character updates {'align' if cosine > 0 else 'oppose'} (cosine {cosine:+.2f})")
    return BlockOverlap(block, len(rows), cosine, energy, chance, share,
                        (se / ce) ** 0.5 if ce else float("inf"), bool(reasons), reasons)


def analyse(style: LoraFile, character: LoraFile, energy: float = 1.0,
            show_progress: bool = False) -> WeightSpaceReport:
    """The weight-space report of `style` against `character` (modules both touch; blocks in LBW order)."""
    shared = sorted(set(style.modules) & set(character.modules))
    bar = progress_bar(len(shared), "weight space", "module", enabled=show_progress)
    rows: list[ModuleOverlap] = []
    inners: dict[str, float] = {}
    with few_threads():
        for key in shared:
            bar.update()
            row = compare_module(style.modules[key], character.modules[key], energy)
            rows.append(row)
            inners[row.block or "?"] = inners.get(row.block or "?", 0.0) + row.cosine * (row.style_energy * row.character_energy) ** 0.5
    total_style = sum(r.style_energy for r in rows)
    by_block: dict[str, list[ModuleOverlap]] = {}
    for row in rows:
        by_block.setdefault(row.block or "?", []).append(row)
    order = {b: i for i, b in enumerate(lbw_layout(style.arch or character.arch))}
    blocks = [
        _block_summary(b, by_block[b], inners[b], total_style)
        for b in sorted(by_block, key=lambda b: (order.get(b, 99), b))
    ]
    total_char = sum(r.character_energy for r in rows)
    total_inner = sum(inners.values())
    return WeightSpaceReport(
        arch=style.arch or character.arch,
        shared_modules=len(rows),
        style_only_modules=len(set(style.modules) - set(character.modules)),
        character_only_modules=len(set(character.modules) - set(style.modules)),
        overall_cosine=total_inner / (total_style * total_char) ** 0.5 if total_style and total_char else 0.0,
        overall_projection_energy=sum(r.projection_energy * r.style_energy for r in rows) / total_style if total_style else 0.0,
        blocks=blocks, modules=rows,
    )
