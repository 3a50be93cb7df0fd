"""Non-finite numbers never end as a "ready" LoRA or a NaN image.

A training run whose loss or gradients become NaN/inf stops before they reach the weights: the
checkpoint is kept, nothing is registered, a job fails with the step and the reason. Generation
that produces NaN pixels refuses instead of writing black images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from sqlalchemy import func, select

from lorastrap.characters import add_character
from lorastrap.kernel.errors import UserError
from lorastrap.method.generate import generate_candidates
from lorastrap.method.train import train_character_lora
from lorastrap.models.safetensors_io import safetensors_metadata
from lorastrap.training.loop import TrainingDiverged
from registry.models import Image, Job, Lora

FAST = {"max_train_steps": 4, "rank": 4, "alpha": 2.0, "sample_steps": 1, "batch_size": 2,
        "learning_rate": 5e-3, "save_every_steps": 2}


@pytest.fixture
def character(workspace, tiny_model_dir: Path, seed_image: Path):  # type: ignore[no-untyped-def]
    workspace.config.workspace.base_model = str(tiny_model_dir)
    cfg = workspace.root / "lorastrap.toml"  # so the CLI and workers in other processes agree
    cfg.write_text(cfg.read_text().replace('base_model = "tiny"', f'base_model = "{tiny_model_dir}"'))
    return add_character(workspace, "Tiny Girl", [seed_image], "1girl, solo, fox ears")


def _lora_rows(ws) -> int:  # type: ignore[no-untyped-def]
    with ws.open_registry() as reg, reg.session(write=False) as s:
        return s.scalar(select(func.count(Lora.id)))


def _nan_at(step: int, monkeypatch):  # type: ignore[no-untyped-def]
    """Make the objective's loss NaN from optimizer step `step` on (1-based), counting calls."""
    from lorastrap.training.objective import Objective

    real = Objective.loss
    calls = {"n": 0}

    def loss(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        value = real(self, *args, **kwargs)
        return value * float("nan") if calls["n"] >= step else value

    monkeypatch.setattr(Objective, "loss", loss)


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_the_checkpoint(workspace, character, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _nan_at(3, monkeypatch)  # steps 1-2 are fine (a checkpoint at step 2), step 3 is NaN
    with pytest.raises(TrainingDiverged, match=r"stopped at step 3/4: the loss became nan"):
        train_character_lora(workspace, character.slug, "style", overrides=FAST, progress=False)
    run = next(workspace.runs_dir.iterdir())
    ckpt = run / "checkpoint.safetensors"
    assert ckpt.is_file()
    progress = json.loads(safetensors_metadata(ckpt)["progress"])
    assert progress["step"] == 2  # the last good state, finite
    assert all(torch.isfinite(t).all() for t in load_file(ckpt).values())
    assert "stopped: step 3: the loss became nan" in (run / "train.log").read_text()
    assert _lora_rows(workspace) == 0
    assert not list(workspace.loras_dir(character.slug).glob("*.safetensors"))


def test_a_gradient_that_turns_inf_with_a_finite_loss_stops_before_the_weights_change(
        workspace, character, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.training.steps import StepRunner

    real = StepRunner.step
    before: list[torch.Tensor] = []
    runners: list[StepRunner] = []

    def step(self, index: int):  # type: ignore[no-untyped-def]
        if index == 2:  # optimizer step 3 of 4: its loss stays finite, one gradient becomes inf
            runners.append(self)
            before.extend(p.detach().clone() for p in self.params)
            self.params[0].register_hook(lambda grad: grad * float("inf"))
        return real(self, index)

    monkeypatch.setattr(StepRunner, "step", step)
    with pytest.raises(TrainingDiverged, match=r"stopped at step 3/4: the gradient norm became (inf|nan)"):
        train_character_lora(workspace, character.slug, "style", overrides=FAST, progress=False)
    params = runners[0].params
    assert len(params) == len(before) > 1
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))  # the optimizer never stepped
    assert all(torch.isfinite(p).all() for p in params)
    run = next(workspace.runs_dir.iterdir())
    ckpt = run / "checkpoint.safetensors"
    assert json.loads(safetensors_metadata(ckpt)["progress"])["step"] == 2  # the last good state is kept
    assert all(torch.isfinite(t).all() for t in load_file(ckpt).values())
    assert "stopped: step 3: the gradient norm became" in (run / "train.log").read_text()
    assert _lora_rows(workspace) == 0
    assert not list(workspace.loras_dir(character.slug).glob("*.safetensors"))


def _nan_lora(source: Path, dest: Path) -> Path:
    tensors = load_file(source)
    key = next(k for k in tensors if k.endswith("lora_up.weight"))
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, dest, metadata=safetensors_metadata(source))
    return dest


def test_train_init_from_a_nan_lora_registers_nothing(workspace, character, cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = train_character_lora(workspace, character.slug, "style", overrides=FAST, progress=False)
    bad = _nan_lora(good.path, tmp_path / "nan.safetensors")
    r = cli_run("train", character.slug, "--kind", "style", "--steps", "2", "--quiet", "--init-from", str(bad))
    assert r.code == 2 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "nan" in r.err.lower() or "finite" in r.err.lower()
    assert _lora_rows(workspace) == 1  # only the good one
    assert [p.name for p in workspace.loras_dir(character.slug).glob("*.safetensors")] == [good.path.name]


def test_a_diverging_job_fails_with_the_step_and_the_reason(workspace, character, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.jobs.manage import jobs_add
    from lorastrap.jobs.worker import run_worker

    cfg = workspace.root / "lorastrap.toml"
    cfg.write_text(cfg.read_text() + "\n[training]\nmax_train_steps = 4\nsave_every_steps = 2\nsample_steps = 1\n"
                   "rank = 4\nbatch_size = 2\n")
    from lorastrap.workspace import load_workspace

    ws = load_workspace(workspace.root)
    job = jobs_add(ws, "train", character=character.slug)
    _nan_at(2, monkeypatch)
    summary = run_worker(ws, drain=True, emit=lambda m: None, show_progress=False)
    assert summary.get("failed") == 1, summary
    with ws.open_registry() as reg, reg.session(write=False) as s:
        row = s.get(Job, job["id"])
        assert row.status == "failed"
        assert "TrainingDiverged" in row.error and "step 2/4" in row.error and "loss became nan" in row.error
    assert _lora_rows(ws) == 0


def test_generation_refuses_nan_pixels_and_writes_nothing(workspace, character, tmp_path, snapshot) -> None:  # type: ignore[no-untyped-def]
    good = train_character_lora(workspace, character.slug, "style", overrides=FAST, progress=False)
    # Finite but absurd weights (1e30): the UNet's activations overflow to inf, then NaN. The
    # file is valid; the numbers it produces are not.
    tensors = load_file(good.path)
    huge = {k: (torch.full_like(v.float(), 1e30) if "lora_" in k and k.endswith(".weight") else v) for k, v in tensors.items()}
    save_file(huge, good.path, metadata=safetensors_metadata(good.path))
    before = snapshot(workspace.root)
    with workspace.open_registry() as reg, reg.session(write=False) as s:
        images = s.scalar(select(func.count(Image.id)))
    with pytest.raises(UserError, match="non-finite \\(NaN/inf\\) pixels.*nothing was written"):
        generate_candidates(workspace, character.slug, ["front"], per_view=2, steps=2, lora_id=good.id,
                            progress=False)
    assert snapshot(workspace.root) == before
    with workspace.open_registry() as reg, reg.session(write=False) as s:
        assert s.scalar(select(func.count(Image.id))) == images
