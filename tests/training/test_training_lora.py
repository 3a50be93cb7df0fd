"""LoRA training on the real tiny model: the file, its round trip, resume, init_from, caches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from game_export.contact_sheet import write_contact_sheet
from lorastrap.kernel.errors import UserError
from lorastrap.models.base import load_pipeline, resolve_base_model
from lorastrap.models.hashing import addnet_hash
from lorastrap.models.lora import read_lora
from lorastrap.models.lora.validate import base_modules, check_fits
from lorastrap.models.safetensors_io import safetensors_metadata
from lorastrap.training.loop import TrainingInterrupted, TrainItem, train_lora

TRIGGER = "tnygrl"
PROMPTS = [f"{TRIGGER}, from side", f"{TRIGGER}, from behind"]


@pytest.fixture(scope="module")
def small_config(train_kit):  # type: ignore[no-untyped-def]
    return train_kit.config


@pytest.fixture(scope="module")
def run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, train_kit, small_config):
    root = tmp_path_factory.mktemp("train")
    items = train_kit.make_items(root / "data")
    result = train_lora(tiny_model_dir, items, small_config(), root / "out" / "tnygrl.safetensors",
                        metadata={"character": "tnygrl", "dataset_version_hash": "abc123"},
                        work_dir=root / "work", cache_dir=root / "cache", sample_prompts=PROMPTS,
                        progress=False, sample_sheet=write_contact_sheet)
    return root, items, result


def test_lora_file_keys_metadata_and_shapes(run, tiny_model_dir: Path) -> None:
    root, items, result = run
    tensors = load_file(str(result.path))
    meta = safetensors_metadata(result.path)
    assert result.steps == 6 and len(result.loss_history) == 6
    modules = {k.rsplit(".lora_", 1)[0].removesuffix(".alpha") for k in tensors}
    assert all(m.startswith("lora_unet_") for m in modules) and len(modules) == 4 * 14
    for m in modules:
        down, up = tensors[f"{m}.lora_down.weight"], tensors[f"{m}.lora_up.weight"]
        assert down.shape[0] == 4 and up.shape[1] == 4 and down.dtype == torch.float16
        assert float(tensors[f"{m}.alpha"]) == 2.0  # the real alpha, not the rank
    lora = read_lora(result.path)
    check_fits(lora, base_modules(resolve_base_model(tiny_model_dir)))  # every name and shape fits
    assert lora.arch == "sd15" and not lora.unknown
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_steps"] == "6"
    assert meta["ss_resolution"] == "(64, 64)" and meta["ss_num_train_images"] == "8"
    # the keys a trainer UI shows, with the values sd-scripts would write for this run
    batches = int(meta["ss_num_batches_per_epoch"])
    assert batches >= 4 and meta["ss_num_epochs"] == str(-(-6 // batches)) and meta["ss_total_batch_size"] == "2"
    assert meta["ss_text_encoder_lr"] == "0" and meta["ss_network_train_unet_only"] == "True"
    assert meta["ss_max_grad_norm"] == "1.0" and meta["ss_cache_latents"] == "True" and meta["ss_clip_skip"] == "1"
    assert meta["ss_session_id"].isdigit() and "ss_sd_model_hash" not in meta  # a folder has no A1111 legacy hash
    assert json.loads(meta["ss_tag_frequency"])["5_tnygrl"]["fox ears"] == 4
    assert json.loads(meta["ss_dataset_dirs"]) == {"5_tnygrl": {"n_repeats": 2, "img_count": 4}}
    assert float(meta["ss_training_finished_at"]) >= float(meta["ss_training_started_at"])
    assert meta["sshs_model_hash"] == addnet_hash(result.path) == result.model_hash
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.trigger_phrase"] == TRIGGER
    assert meta["modelspec.thumbnail"].startswith("data:image/png;base64,")
    assert meta["lorastrap.character"] == "tnygrl" and meta["lorastrap.dataset_version_hash"] == "abc123"
    assert json.loads(meta["lorastrap.config"])["rank"] == 4
    assert result.sample_grid is not None and Image.open(result.sample_grid).width > 128
    assert "step 6" in result.log_path.read_text()


def test_round_trip_through_load_lora_weights(run, tiny_model_dir: Path) -> None:
    """The file loaded with diffusers reproduces the in-memory model's samples (tolerance: one
    8-bit level, from the fp16 file; 0 was measured) and visibly differs from the base model."""
    from lorastrap.models.generation import Generator, GenRequest

    root, _, result = run
    requests = [GenRequest(p, seed=1234 + i, steps=2, cfg=6.0) for i, p in enumerate(PROMPTS)]
    with Generator(tiny_model_dir) as gen:
        gen.add_lora(result.path, "tnygrl")
        with_lora = gen.generate(requests)
        gen.set_weights({})
        base = gen.generate(requests)
    for i, img in enumerate(with_lora):
        in_memory = np.asarray(Image.open(root / "work" / "samples" / "step-000006" / f"{i:02d}.png").convert("RGB"))
        loaded = np.asarray(img.image)
        assert np.abs(in_memory.astype(int) - loaded.astype(int)).max() <= 1
        # the LoRA must change the picture by more than the tolerance, or the check means nothing
        assert np.abs(loaded.astype(int) - np.asarray(base[i].image).astype(int)).max() >= 3


def test_resume_equals_uninterrupted_run(run, tiny_model_dir: Path, tmp_path: Path, small_config) -> None:
    root, items, reference = run
    out = tmp_path / "resumed.safetensors"

    def stop_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    kwargs = dict(work_dir=tmp_path / "work", cache_dir=root / "cache", sample_prompts=PROMPTS, progress=False)
    with pytest.raises(TrainingInterrupted, match="step 3/6"):
        train_lora(tiny_model_dir, items, small_config(), out, on_step=stop_at_3, **kwargs)
    assert not out.exists() and (tmp_path / "work" / "checkpoint.safetensors").is_file()
    assert not [p for p in tmp_path.rglob("*.tmp")]
    resumed = train_lora(tiny_model_dir, items, small_config(), out, resume=True, **kwargs)
    assert resumed.cache_stats["latent_hits"] == 4 and resumed.cache_stats["latent_misses"] == 0
    assert resumed.cache_stats["text_misses"] == 0
    assert resumed.loss_history == reference.loss_history
    a, b = load_file(str(out)), load_file(str(reference.path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "work" / "checkpoint.safetensors").exists()


def test_resume_refuses_a_checkpoint_of_other_settings(run, tiny_model_dir: Path, tmp_path: Path, small_config) -> None:
    root, items, _ = run
    kwargs = dict(work_dir=tmp_path / "w", cache_dir=root / "cache", progress=False, sample_prompts=PROMPTS[:1])

    def stop(step: int, loss: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train_lora(tiny_model_dir, items, small_config(), tmp_path / "x.safetensors", on_step=stop, **kwargs)
    with pytest.raises(UserError, match="other data or settings"):
        train_lora(tiny_model_dir, items, small_config(rank=8), tmp_path / "x.safetensors", resume=True, **kwargs)


def test_init_from_reproduces_the_lora_at_step_0(run, tiny_model_dir: Path, small_config) -> None:
    from lorastrap.training.setup import setup_models

    _, _, result = run
    ref = resolve_base_model(tiny_model_dir)
    models = setup_models(ref, small_config(rank=16, alpha=16.0), result.path, torch.device("cpu"), torch.float32)
    assert (models.rank, models.alpha) == (4, 2.0)  # the file's layout wins over the config
    pipe = load_pipeline(ref)
    pipe.load_lora_weights(str(result.path), adapter_name="file")
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([500])
    with torch.no_grad():
        ours = models.unet(x, t, cond).sample
        theirs = pipe.unet(x, t, cond).sample
        pipe.disable_lora()
        plain = pipe.unet(x, t, cond).sample
    assert torch.equal(ours, theirs)
    assert not torch.allclose(ours, plain)


def test_init_from_trains_on_new_data(run, tiny_model_dir: Path, tmp_path: Path, small_config) -> None:
    root, items, result = run
    follow = train_lora(tiny_model_dir, items[:2], small_config(max_train_steps=2), tmp_path / "next.safetensors",
                        init_from=result.path, metadata={"parent_lora_sha256": result.sha256},
                        work_dir=tmp_path / "w", cache_dir=root / "cache", sample_prompts=PROMPTS[:1],
                        progress=False)
    meta = safetensors_metadata(follow.path)
    assert meta["lorastrap.parent_lora_sha256"] == result.sha256
    assert json.loads(meta["lorastrap.config"])["init_from"]["sha256"] == result.sha256
    assert follow.cache_stats["latent_misses"] == 0


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(run, tiny_model_dir: Path, small_config) -> None:
    import random

    from lorastrap.training.dataset import prepare_data
    from lorastrap.training.objective import Objective
    from lorastrap.training.setup import setup_models

    root, items, _ = run
    cfg = small_config(caption_dropout=0.0, min_snr_gamma=None)
    models = setup_models(resolve_base_model(tiny_model_dir), cfg, None, torch.device("cpu"), torch.float32)
    data = prepare_data(items, cfg, resolution=64, bucket_step=16, vae=models.vae, text=models.text,
                        model_hash="x", cache_dir=root / "cache", device="cpu", progress=False)
    objective = Objective(models, data, cfg, "cpu")
    params = [p for p in models.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-2)

    def fixed_loss() -> torch.Tensor:
        return objective.loss([0, 2], torch.Generator().manual_seed(7), random.Random(7))

    with torch.no_grad():
        before = float(fixed_loss())
    for _ in range(10):
        fixed_loss().backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        after = float(fixed_loss())
    assert after < 0.8 * before


def test_a_module_without_a_kohya_name_is_refused_before_training(run, tiny_model_dir: Path, tmp_path: Path,
                                                                   small_config) -> None:
    _, items, _ = run
    cfg = small_config(train_text_encoder=True, text_encoder_targets=("token_embedding",))
    with pytest.raises(UserError, match=r"have no kohya/A1111 name \(e.g. te1:embeddings.token_embedding\)"):
        train_lora(tiny_model_dir, items, cfg, tmp_path / "x.safetensors", work_dir=tmp_path / "w",
                   cache_dir=tmp_path / "c", progress=False)
    assert not (tmp_path / "x.safetensors").exists()


def test_empty_dataset_and_missing_image_are_user_errors(tiny_model_dir: Path, tmp_path: Path, small_config) -> None:
    kwargs = dict(work_dir=tmp_path / "w", cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(UserError, match="dataset is empty"):
        train_lora(tiny_model_dir, [], small_config(), tmp_path / "o.safetensors", **kwargs)
    with pytest.raises(UserError, match="missing.png"):
        train_lora(tiny_model_dir, [TrainItem(tmp_path / "missing.png", "x")], small_config(),
                   tmp_path / "o.safetensors", **kwargs)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UserError, match="bad.png"):
        train_lora(tiny_model_dir, [TrainItem(bad, "x")], small_config(), tmp_path / "o.safetensors", **kwargs)
    assert not (tmp_path / "o.safetensors").exists()
