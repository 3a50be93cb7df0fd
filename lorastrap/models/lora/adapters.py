"""Between a `LoraFile` and peft adapters on a live UNet / text encoders (training and checkpoints).

The live module path of a text-encoder layer depends on the installed transformers (≥ 5 drops
CLIPTextModel's `text_model` level); canonical names never do. `live_name` resolves a canonical
path in a model, `canonical_of_live` maps back, and both refuse what the fixed tables do not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lorastrap.kernel.errors import UserError
from lorastrap.models.lora.core import LoraFile, LoraModule
from lorastrap.models.lora.names import UNET_PATH, canonical_key, canonical_te_path, key_path

_PEFT_PARTS = {"base_layer", "lora_A", "lora_B", "lora_dropout", "lora_embedding_A", "lora_embedding_B",
               "lora_magnitude_vector"}


def te_components(count: int) -> list[str]:
    return ["te1", "te2"][:count]


def _has(model: torch.nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def live_name(model: torch.nn.Module, component: str, path: str) -> str | None:
    """Where the module of canonical `path` lives in `model`, or None."""
    if _has(model, path):
        return path
    if component != "unet" and path.startswith("text_model.") and _has(model, path[len("text_model."):]):
        return path[len("text_model."):]
    return None


def canonical_of_live(component: str, name: str) -> str | None:
    """A live module name → its canonical path (None for what no consumer's naming covers)."""
    if component == "unet":
        return name if UNET_PATH.fullmatch(name) else None
    return canonical_te_path(name)


def _parts(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module]) -> list[tuple[str, torch.nn.Module]]:
    return [("unet", unet), *zip(te_components(len(text_encoders)), text_encoders)]


def _adapted(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module], adapter: str):  # type: ignore[no-untyped-def]
    """(component, live name, peft layer) of every module carrying `adapter`."""
    for component, model in _parts(unet, text_encoders):
        for name, module in model.named_modules():
            held = [getattr(module, attr, None) or {} for attr in ("lora_A", "lora_embedding_A")]
            if any(adapter in h for h in held) and not set(name.split(".")) & _PEFT_PARTS:
                yield component, name, module


def check_adapter_names(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = (),
                        adapter: str = "default") -> None:
    """Refuse, before any step is trained, an adapter on a module no LoRA consumer has a name for."""
    bad = [f"{c}:{n}" for c, n, _ in _adapted(unet, text_encoders, adapter) if canonical_of_live(c, n) is None]
    if bad:
        raise UserError(f"{len(bad)} trained modules have no kohya/A1111 name (e.g. {bad[0]}); target attention, "
                        "feed-forward or ResNet layers of the UNet and q/k/v/out_proj or fc1/fc2 of the text encoder")


def from_adapter(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = (), arch: str | None = None,
                 adapter: str = "default") -> LoraFile:
    """The peft adapter `adapter` of the models as a LoraFile (fp32 copies of its factors)."""
    check_adapter_names(unet, text_encoders, adapter)
    modules: dict[str, LoraModule] = {}
    for component, name, module in _adapted(unet, text_encoders, adapter):
        key = canonical_key(component, canonical_of_live(component, name) or name)
        modules[key] = LoraModule(key, module.lora_A[adapter].weight.detach().to("cpu", torch.float32).clone(),
                                  module.lora_B[adapter].weight.detach().to("cpu", torch.float32).clone(),
                                  float(module.lora_alpha[adapter]))
    if not modules:
        raise ValueError(f"no LoRA adapter named {adapter!r} in the model")
    return LoraFile(modules, arch, "kohya")


@torch.no_grad()
def load_into_adapter(lora: LoraFile, unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = (),
                      adapter: str = "default") -> int:
    """Copy the LoRA's factors into an existing peft adapter of the same layout; return modules set."""
    models = dict(_parts(unet, text_encoders))
    count = 0
    for key, module in lora.modules.items():
        component, path = key_path(key)
        model = models.get(component)
        name = live_name(model, component, path) if model is not None else None
        target = model.get_submodule(name) if name else None
        if target is None or not hasattr(target, "lora_A") or adapter not in target.lora_A:
            continue
        a, b = target.lora_A[adapter].weight, target.lora_B[adapter].weight
        a.copy_(module.down.to(a.device, a.dtype))
        b.copy_(module.up.to(b.device, b.dtype))
        count += 1
    return count


@dataclass(frozen=True)
class AdapterLayout:
    """Which live modules a LoRA targets, with ranks and alphas, as peft LoraConfig arguments."""

    targets: dict[str, list[str]]  # "unet" / "te1" / "te2" → live module names
    rank: int
    alpha: float
    rank_pattern: dict[str, dict[str, int]]
    alpha_pattern: dict[str, dict[str, float]]


def adapter_layout(lora: LoraFile, unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = ()) -> AdapterLayout:
    """The peft configuration that holds `lora` on these models (call after validation)."""
    models = dict(_parts(unet, text_encoders))
    targets: dict[str, list[str]] = {}
    ranks: dict[str, dict[str, int]] = {}
    alphas: dict[str, dict[str, float]] = {}
    for key, module in sorted(lora.modules.items()):
        component, path = key_path(key)
        name = live_name(models[component], component, path) if component in models else None
        if name is None:
            continue
        targets.setdefault(component, []).append(name)
        ranks.setdefault(component, {})[name] = module.rank
        alphas.setdefault(component, {})[name] = module.alpha
    all_ranks = [r for d in ranks.values() for r in d.values()]
    all_alphas = [a for d in alphas.values() for a in d.values()]
    if not all_ranks:
        raise ValueError("the LoRA targets no module of this model")
    rank = max(set(all_ranks), key=all_ranks.count)
    alpha = max(set(all_alphas), key=all_alphas.count)
    return AdapterLayout(targets, rank, alpha,
                         {p: {n: r for n, r in d.items() if r != rank} for p, d in ranks.items()},
                         {p: {n: a for n, a in d.items() if a != alpha} for p, d in alphas.items()})
