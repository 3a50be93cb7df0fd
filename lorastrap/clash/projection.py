"""`clash fix`: a compat style LoRA that no longer writes into the character's subspace.

Method ("subspace projection"): for every module both LoRAs touch, the style's update is projected
off the character's column (output) subspace,

    ΔW_style' = (I − L_c L_cᵀ) · ΔW_style,       L_c = orthonormal basis of col(ΔW_char),

then re-factored to the style's rank with an SVD (up = L'·√σ, down = √σ·V'ᵀ, alpha = rank so the
scale is 1). `sides="both"` also projects off the character's row (input) subspace,

    ΔW_style' = (I − L_c L_cᵀ) · ΔW_style · (I − R_c R_cᵀ),   R_c = orthonormal basis of row(ΔW_char),

so the style neither writes where the character writes nor reads what the character reads (for
cross-attention to_k/to_v: the text-embedding directions of the character's trigger); `"row"` is
the input side alone. What the style writes outside the character's directions is kept exactly; modules the
character does not touch are copied unchanged. The idea of keeping concept updates in mutually
orthogonal subspaces so that they add without crosstalk is Orthogonal Adaptation (Po et al.,
CVPR 2024, arXiv:2312.02432) and O-LoRA (Wang et al., 2023, arXiv:2310.14152); here it is applied
after training to an existing style LoRA, as a projection, without retraining. See docs/clash.md.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch

from lorastrap.clash.blocks import block_of
from lorastrap.clash.weightspace import ThinDelta, few_threads, module_delta, projection_energy, thin_svd
from lorastrap.models.lora import LoraFile, LoraModule, carried_metadata

METHOD = "subspace-projection"
SIDES = ("column", "row", "both")  # which of the character's subspaces the style is projected off
METHOD_CITATION = "Orthogonal Adaptation, Po et al. CVPR 2024 (arXiv:2312.02432); O-LoRA, Wang et al. 2023 (arXiv:2310.14152)"


def _project(style: ThinDelta, character: ThinDelta, sides: str = "column") -> ThinDelta:
    """The style's update projected off the character's column and/or row subspace, as a thin SVD.

    Both projections act on the thin factors only (out×k and k×in), so nothing out×in is formed."""
    left = style.basis * style.sigma[None, :]
    rows = style.rows
    if sides in ("column", "both"):
        left = left - character.basis @ (character.basis.T @ left)
    if sides in ("row", "both"):
        rows = rows - (rows @ character.rows.T) @ character.rows
    return thin_svd(left, rows)


def row_energy(target: ThinDelta, onto: ThinDelta) -> float:
    """‖ΔW_target · P_row(onto)‖² / ‖ΔW_target‖²: the share of `target` that reads `onto`'s inputs."""
    total = target.energy
    if total == 0.0 or onto.rows.shape[0] == 0:
        return 0.0
    inside = ((target.rows @ onto.rows.T) * target.sigma[:, None]).pow(2).sum()
    return float(inside) / total


def _factor(delta: ThinDelta, like: LoraModule) -> LoraModule:
    """Kohya factors of `delta` in the shape of `like` (same rank, zero-padded; alpha = rank → scale 1)."""
    rank, k = like.rank, delta.sigma.numel()
    root = delta.sigma.sqrt()
    up = torch.zeros(like.out_features, rank, dtype=torch.float64)
    down = torch.zeros(rank, like.in_features, dtype=torch.float64)
    up[:, :k] = delta.basis * root[None, :]
    down[:k] = root[:, None] * delta.rows
    return LoraModule(like.key, down.reshape(like.down.shape).to(torch.float32),
                      up.reshape(like.up.shape).to(torch.float32), float(rank))


def _check_sides(sides: str) -> None:
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {', '.join(SIDES)}, got {sides!r}")


def project_out(style: LoraModule, character: LoraModule, energy: float = 1.0,
                sides: str = "column") -> LoraModule:
    """The style module with its component inside the character's column (and/or row) subspace removed."""
    _check_sides(sides)
    return _factor(_project(module_delta(style), module_delta(character, energy), sides), style)


@dataclass
class FixResult:
    lora: LoraFile
    changed_modules: int
    energy_before: float  # share of the style's update inside the character's column subspace, before…
    energy_after: float  # …and after (≈ 0 by construction unless sides="row")
    kept_energy: float  # ‖ΔW_style'‖² / ‖ΔW_style‖² over the changed modules
    blocks: list[str]
    sides: str = "column"
    row_energy_before: float = 0.0  # the same shares on the input side (what the style reads)
    row_energy_after: float = 0.0


def compat_lora(style: LoraFile, character: LoraFile, energy: float = 1.0,
                blocks: Collection[str] | None = None, sides: str = "column") -> FixResult:
    """Build the compat LoRA; `blocks` limits the projection to those LBW blocks (default: all);
    `sides` picks the character subspaces projected off: "column" (output), "row" (input), "both"."""
    _check_sides(sides)
    with few_threads():
        return _compat_lora(style, character, energy, blocks, sides)


def _compat_lora(style: LoraFile, character: LoraFile, energy: float, blocks: Collection[str] | None,
                 sides: str) -> FixResult:
    modules: dict[str, LoraModule] = {}
    before = after = row_before = row_after = total = kept = 0.0
    changed: set[str] = set()
    for key, module in style.modules.items():
        char = character.modules.get(key)
        block = block_of(key)
        if char is None or (blocks is not None and block not in blocks):
            modules[key] = module
            continue
        c, s_old = module_delta(char, energy), module_delta(module)
        s_new = _project(s_old, c, sides)
        modules[key] = _factor(s_new, module)
        total += s_old.energy
        kept += s_new.energy
        before += projection_energy(s_old, c) * s_old.energy
        after += projection_energy(s_new, c) * s_new.energy
        row_before += row_energy(s_old, c) * s_old.energy
        row_after += row_energy(s_new, c) * s_new.energy
        changed.add(block or "?")
    result = LoraFile(modules, style.arch, "kohya", dict(style.metadata), None, list(style.warnings))
    return FixResult(
        lora=result,
        changed_modules=sum(1 for k in modules if modules[k] is not style.modules[k]),
        energy_before=before / total if total else 0.0,
        energy_after=after / kept if kept else 0.0,
        kept_energy=kept / total if total else 1.0,
        blocks=sorted(changed),
        sides=sides,
        row_energy_before=row_before / total if total else 0.0,
        row_energy_after=row_after / kept if kept else 0.0,
    )


def compat_metadata(style: LoraFile, result: FixResult, style_name: str, character_name: str,
                    extra: dict[str, str] | None = None, *, drop_trigger: bool = False) -> dict[str, str]:
    """Kohya/modelspec metadata of the compat file: the style's own, updated, plus lineage keys.

    `drop_trigger` empties `modelspec.trigger_phrase` (tools then prompt the style without its
    trigger words): in the lab the style words in the prompt, not the style's weights, cost most of
    the character's identity (docs/clash.md "Which fix, measured")."""
    meta = carried_metadata(style)
    if drop_trigger:
        meta["lorastrap.compat_dropped_trigger"] = meta.get("modelspec.trigger_phrase", "")
        meta["modelspec.trigger_phrase"] = ""
    ranks = sorted({m.rank for m in result.lora.modules.values()})
    meta.setdefault("ss_network_module", "networks.lora")
    meta["ss_network_dim"] = str(ranks[-1]) if ranks else "0"
    meta["ss_network_alpha"] = meta["ss_network_dim"]
    meta["modelspec.title"] = f"{style_name} (compat: {character_name})"
    meta.setdefault("modelspec.sai_model_spec", "1.0.0")
    meta.update({
        "lorastrap.kind": "external",
        "lorastrap.compat_method": METHOD if result.sides == "column" else f"{METHOD}-{result.sides}",
        "lorastrap.compat_sides": result.sides,
        "lorastrap.compat_citation": METHOD_CITATION,
        "lorastrap.compat_with": character_name,
        "lorastrap.compat_of": style_name,
        "lorastrap.compat_blocks": ",".join(result.blocks),
        "lorastrap.compat_energy_before": f"{result.energy_before:.6f}",
        "lorastrap.compat_energy_after": f"{result.energy_after:.6f}",
        "lorastrap.compat_kept_energy": f"{result.kept_energy:.6f}",
    })
    meta.update(extra or {})
    return meta
