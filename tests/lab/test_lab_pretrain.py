"""Pretraining the lab model: the whole path on CPU in miniature, resumable step loop, no pickles."""

from __future__ import annotations

import json

import pytest
import torch

from lorastrap.lab.train_phases import Runtime, lr_factor, make_optimizer, run_steps
from lorastrap.training.checkpoint import load_state, save_state


def _toy(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = make_optimizer(model.parameters(), 1e-2, torch.device("cpu"))
    rt = Runtime(torch.device("cpu"), seed=3, progress=False)

    def step(i: int) -> torch.Tensor:
        g = rt.generator(i, 1)  # batches depend on (seed, step) only: a resumed run sees the same ones
        x = torch.randn(4, 8, generator=g)
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return model, opt, rt, step


def test_interrupted_and_resumed_training_equals_one_run(tmp_path):
    model, opt, rt, step = _toy()
    run_steps("toy", rt, step, opt, 1e-2, 4, total=6)
    straight = [p.detach().clone() for p in model.parameters()]

    class Killed(Exception):
        pass

    model, opt, rt, step = _toy()

    def save_then_die(at: int, total: int) -> None:  # the timer's checkpoint, then the process dies
        save_state(tmp_path / "ck" / "state.safetensors", {"toy": model.state_dict()}, opt.state_dict(),
                   {"step": at, "total": total})
        if at == 3:
            raise Killed

    with pytest.raises(Killed):
        run_steps("toy", rt, step, opt, 1e-2, 4, total=6, checkpoint=save_then_die, checkpoint_every_s=0)
    model, opt, rt, step = _toy(seed=1)  # fresh process: other initial weights, empty optimizer
    groups, opt_state, info = load_state(tmp_path / "ck" / "state.safetensors")
    model.load_state_dict(groups["toy"])
    opt.load_state_dict(opt_state)
    assert info == {"step": 3, "total": 6}
    result = run_steps("toy", rt, step, opt, 1e-2, 4, start=3, total=6)
    assert result.steps == 6
    for a, b in zip(straight, model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not list(tmp_path.glob("ck/*.pt")) and [p.name for p in (tmp_path / "ck").iterdir()] == ["state.safetensors"]


def test_a_time_budget_sizes_the_phase():
    model, opt, rt, step = _toy()
    result = run_steps("toy", rt, step, opt, 1e-2, 4, budget_s=0.5)
    assert result.steps >= 20 and result.seconds < 5
    assert lr_factor(0, 100) < lr_factor(9, 100) == 1.0 and lr_factor(99, 100) < 0.2


@pytest.mark.slow
def test_pretrain_in_miniature_writes_a_loadable_model(tmp_path):
    from lorastrap.lab.model_config import MARKER, load_lab_pipeline
    from lorastrap.lab.pretrain import main

    out = tmp_path / "lab"
    main(["--out", str(out), "--device", "cpu", "--vae-steps", "2", "--unet-steps", "2",
          "--n-images", "24", "--vae-batch", "2", "--unet-batch", "4", "--eval-images", "2",
          "--eval-steps", "2", "--workers", "1", "--no-progress"])
    record = json.loads((out / MARKER).read_text())
    assert record["steps"] == {"vae": 2, "unet": 2}
    assert record["generated"]["all_views"]["n"] == 2
    assert not (tmp_path / "lab.ckpt").exists()
    pipe = load_lab_pipeline(out)
    assert pipe.vae.config.scaling_factor == pytest.approx(record["scaling_factor"])
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
