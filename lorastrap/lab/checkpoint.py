"""Resumable training state without pickles: tensors in safetensors, the rest in JSON.

An optimizer's state dict is flattened to `opt.<param index>.<name>` tensors plus its param
groups as JSON metadata; models are stored by their own state-dict keys.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE = "state.json"


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt.{idx}.{name}"] = t.detach().to("cpu").contiguous()
    return tensors, json.dumps(sd["param_groups"])


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: str) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": json.loads(groups)})


def save_state(directory: Path, info: dict[str, Any], modules: dict[str, torch.nn.Module],
               optimizer: torch.optim.Optimizer | None = None,
               extra: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
    """Write the whole state into a fresh sibling folder, then swap it in (atomic per folder)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, module in modules.items():
            sd = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
            save_file(sd, str(stage / f"{name}.safetensors"))
        for name, tensors in (extra or {}).items():
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
                      str(stage / f"{name}.safetensors"))
        if optimizer is not None:
            tensors, groups = _flatten_optimizer(optimizer)
            save_file(tensors, str(stage / "optimizer.safetensors"), metadata={"param_groups": groups})
        (stage / STATE).write_text(json.dumps(info, indent=1))
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(stage, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def read_info(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / STATE
    return json.loads(path.read_text()) if path.is_file() else None


def load_module(directory: Path, name: str, module: torch.nn.Module) -> None:
    module.load_state_dict(load_file(str(Path(directory) / f"{name}.safetensors")))


def load_tensors(directory: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(directory) / f"{name}.safetensors"))


def load_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    from safetensors import safe_open

    path = str(Path(directory) / "optimizer.safetensors")
    with safe_open(path, "pt") as fh:
        groups = fh.metadata()["param_groups"]
    _restore_optimizer(optimizer, load_file(path), groups)
