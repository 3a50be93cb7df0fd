"""Training checkpoints: adapter weights, optimizer state and progress in ONE safetensors file.

One file means one atomic rename: a run killed while saving leaves the previous checkpoint. The
optimizer state is stored as tensors plus JSON (no pickle, unlike `torch.save`/accelerate).
"""

from __future__ import annotations

import json
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


def save_checkpoint(path: Path, adapter: dict[str, torch.Tensor], optimizer_state: dict,
                    progress: Progress) -> Path:
    opt_tensors, opt_info = _optimizer_to_flat(optimizer_state)
    tensors = {f"lora.{k}": v.to("cpu", torch.float32).contiguous() for k, v in adapter.items()}
    tensors.update(opt_tensors)
    meta = {"progress": json.dumps(progress.__dict__), "optimizer": json.dumps(opt_info)}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict, Progress]:
    tensors, meta = load_safetensors(Path(path))
    try:
        progress = Progress(**json.loads(meta["progress"]))
        optimizer = _optimizer_from_flat(tensors, json.loads(meta["optimizer"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a lorastrap checkpoint ({exc}); delete it and train "
                        "without --resume") from exc
    adapter = {k[len("lora."):]: v for k, v in tensors.items() if k.startswith("lora.")}
    return adapter, optimizer, progress
