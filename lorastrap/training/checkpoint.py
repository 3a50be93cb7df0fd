"""Training checkpoints: weights, optimizer state and progress in ONE safetensors file.

One file means one atomic rename: a run killed while saving leaves the previous checkpoint. The
optimizer state is stored as tensors plus JSON (no pickle, unlike `torch.save`/accelerate).
`save_state`/`load_state` hold any named groups of tensors (the lab's pretraining keeps its VAE,
UNet, text encoder and EMA this way); `save_checkpoint`/`load_checkpoint` are a LoRA run's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.kernel.errors import UserError
from lorastrap.models.safetensors_io import load_safetensors

CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class Progress:
    step: int = 0
    epoch: int = 0
    loss_history: list[float] = field(default_factory=list)
    started_at: float = 0.0
    fingerprint: str = ""


def _optimizer_to_flat(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"opt.{idx}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in info["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": info["param_groups"]}


def save_state(path: Path, groups: Mapping[str, Mapping[str, torch.Tensor]], optimizer_state: dict | None,
               progress: Mapping[str, Any]) -> Path:
    """Write `<group>.<key>` tensors, the optimizer's (`opt.<param>.<name>` + JSON) and `progress`
    (JSON) as one safetensors file, atomically."""
    if "opt" in groups:
        raise ValueError("'opt' is reserved for the optimizer state")
    tensors = {f"{g}.{k}": v.detach().to("cpu").contiguous() for g, ts in groups.items() for k, v in ts.items()}
    meta = {"progress": json.dumps(dict(progress))}
    if optimizer_state is not None:
        opt_tensors, opt_info = _optimizer_to_flat(optimizer_state)
        tensors.update(opt_tensors)
        meta["optimizer"] = json.dumps(opt_info)
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def load_state(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict | None, dict[str, Any]]:
    """(groups of tensors, optimizer state dict or None, progress) of a `save_state` file."""
    tensors, meta = load_safetensors(Path(path))
    optimizer = _optimizer_from_flat(tensors, json.loads(meta["optimizer"])) if "optimizer" in meta else None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith("opt."):
            group, name = key.split(".", 1)
            groups.setdefault(group, {})[name] = value
    return groups, optimizer, json.loads(meta["progress"])


def save_checkpoint(path: Path, adapter: dict[str, torch.Tensor], optimizer_state: dict,
                    progress: Progress) -> Path:
    adapter32 = {k: v.to("cpu", torch.float32) for k, v in adapter.items()}
    return save_state(path, {"lora": adapter32}, optimizer_state, progress.__dict__)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict, Progress]:
    try:
        groups, optimizer, info = load_state(path)
        if optimizer is None:
            raise KeyError("optimizer")
        progress = Progress(**info)
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a lorastrap checkpoint ({exc}); delete it and train "
                        "without --resume") from exc
    return groups.get("lora", {}), optimizer, progress
