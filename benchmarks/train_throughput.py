"""Training and generation throughput of lorastrap, as ratios measured side by side in one run.

CPU mode (default), on the built-in tiny model at 64 px:
  efficiency   = lorastrap's step loop steps/s ÷ bare UNet fwd+bwd+AdamW on cached inputs (≥ 0.90)
  caching      = lorastrap steps/s ÷ a naive loop that loads, tokenizes and runs the VAE and text
                 encoder every step (≥ 2×)
  switch       = `set_adapters` weight switch time ÷ unloading and reloading the LoRA files (≤ 1/20)

    python benchmarks/train_throughput.py [--steps 20] [--batch 4] [--rounds 9]

GPU mode, an SD 1.5-size random-initialised model at 512 px, bf16, rank-16 LoRA on the attention
projections: lorastrap's step loop vs a plain diffusers+peft loop (VAE and text encoder every step,
loss.item() per step, as in diffusers' train_text_to_image_lora.py), at batch 1 and a large batch.
Needs torch, diffusers and peft (peft itself imports transformers and accelerate; lorastrap's code
would run without them: fixed random text embeddings, a single-device stand-in for accelerate).
Finishes in about 2 minutes on an H100/H200:

    python benchmarks/train_throughput.py --gpu [--large-batch 32] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.training.config import TrainConfig  # noqa: E402
from lorastrap.training.dataset import PreparedData, Sample  # noqa: E402
from lorastrap.training.objective import Objective  # noqa: E402
from lorastrap.training.runtime import make_accelerator  # noqa: E402
from lorastrap.training.schedule import BatchSchedule  # noqa: E402
from lorastrap.training.setup import ADAPTER, Models, lora_config, place_trainable  # noqa: E402
from lorastrap.training.steps import StepRunner, make_optimizer  # noqa: E402

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def rate(fn, steps: int, warmup: int, sync=lambda: None) -> float:  # type: ignore[no-untyped-def]
    """Steps per second of `fn(i)` after `warmup` untimed calls."""
    for i in range(warmup):
        fn(i)
    sync()
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        fn(i)
    sync()
    return steps / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------- CPU mode
def _images(folder: Path, n: int) -> list:
    from PIL import Image, ImageDraw

    from lorastrap.training.loop import TrainItem

    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        img = Image.new("RGB", (64, 64), (250, 250, 245))
        ImageDraw.Draw(img).ellipse((6, 6, 58, 58), fill=(40 * i % 256, 90, 200))
        img.save(folder / f"{i}.png")
        items.append(TrainItem(folder / f"{i}.png", f"bench, 1girl, solo, view {i}"))
    return items


def _train_lora_rate(model_dir: Path, items, cfg: TrainConfig, root: Path, warmup: int) -> float:
    """Steps/s of a whole `train_lora` run (progress bookkeeping included), from per-step stamps."""
    from lorastrap.training.loop import train_lora

    stamps: dict[int, float] = {}
    train_lora(model_dir, items, cfg, root / "out.safetensors", work_dir=root / "work",
               cache_dir=root / "cache", sample_prompts=["bench"], progress=False,
               on_step=lambda step, loss: stamps.__setitem__(step, time.perf_counter()))
    last = cfg.max_train_steps
    return (last - warmup) / (stamps[last] - stamps[warmup])


def _step_loops(model_dir: Path, items, cfg: TrainConfig, root: Path):  # type: ignore[no-untyped-def]
    """Three step functions over one model: lorastrap's StepRunner (the code `train_lora` runs
    per step), the bare loop on fixed cached tensors, and the naive loop that loads, resizes,
    tokenizes and encodes its batch every step (a plain diffusers-example data pipeline)."""
    from lorastrap.models.base import resolve_base_model
    from lorastrap.training.buckets import fit_to_bucket
    from lorastrap.training.dataset import load_rgb, prepare_data
    from lorastrap.training.encode import image_to_tensor
    from lorastrap.training.setup import setup_models

    acc = make_accelerator("no")
    models = setup_models(resolve_base_model(model_dir), cfg, None, acc.device, torch.float32)
    data = prepare_data(items, cfg, resolution=64, bucket_step=16, vae=models.vae, text=models.text,
                        model_hash="bench", cache_dir=root / "cache", device=acc.device, progress=False)
    objective = Objective(models, data, cfg, acc.device)
    optimizer = make_optimizer(models, cfg, acc.device)
    unet, optimizer = acc.prepare(models.unet, optimizer)
    objective.unet = unet
    unet.train()
    runner = StepRunner(objective, optimizer, acc, BatchSchedule(data.samples, cfg.batch_size, cfg.seed), cfg, unet)

    vae, te, tok = models.vae, models.text.encoders[0], models.text.tokenizers[0]
    plain_opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4)
    b = cfg.batch_size
    latents = torch.randn(b, 4, 8, 8)
    hidden = torch.randn(b, tok.model_max_length, te.config.hidden_size)

    def update(lat: torch.Tensor, cond: torch.Tensor) -> None:
        noise = torch.randn_like(lat)
        t = torch.randint(0, 1000, (b,))
        loss = torch.nn.functional.mse_loss(unet(lat + noise, t, cond).sample, noise)
        loss.backward()
        plain_opt.step()
        plain_opt.zero_grad(set_to_none=True)

    def naive(i: int) -> None:
        batch = [items[(i * b + k) % len(items)] for k in range(b)]
        pixels = torch.stack([image_to_tensor(fit_to_bucket(load_rgb(it.image_path), (64, 64))[0]) for it in batch])
        ids = tok([it.caption for it in batch], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            lat = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            cond = te(ids)[0]
        update(lat, cond)

    return {"lorastrap": lambda i: runner.step(i), "bare": lambda i: update(latents, hidden), "naive": naive}


def _switch_vs_reload(model_dir: Path, root: Path, lora: Path, repeats: int = 20) -> tuple[float, float]:
    import shutil

    from lorastrap.models.generation import Generator

    other = root / "other.safetensors"
    shutil.copyfile(lora, other)
    with Generator(model_dir) as gen:
        gen.add_lora(lora, "a")
        gen.add_lora(other, "b")
        start = time.perf_counter()
        for i in range(repeats):
            gen.set_weights({"a": 1.0, "b": 0.5} if i % 2 else {"a": 0.3, "b": 1.0})
        switch = (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        for i in range(repeats // 4):
            gen.pipe.unload_lora_weights()
            gen.pipe.load_lora_weights(str(lora), adapter_name="a")
            gen.pipe.load_lora_weights(str(other), adapter_name="b")
            gen.pipe.set_adapters(["a", "b"], [1.0, 0.5])
        reload = (time.perf_counter() - start) / (repeats // 4)
    return switch, reload


def cpu_mode(args: argparse.Namespace) -> None:
    from lorastrap.models.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="lorastrap-bench-"))
    model_dir = build_tiny_model(root / "tiny", "sd15", 0)
    items = _images(root / "data", 8)
    warmup = 5
    cfg = TrainConfig.from_preset("style", max_train_steps=100_000, batch_size=args.batch, rank=4, alpha=4.0,
                                  sample_steps=2, save_every_steps=0, lr_warmup_steps=0, caption_variants=4)
    loops = _step_loops(model_dir, items, cfg, root)
    rates: dict[str, list[float]] = {name: [] for name in loops}
    # Short blocks, interleaved: on a shared machine the load changes from second to second, and
    # blocks side by side see the same load.
    for r in range(args.rounds):
        for name, fn in loops.items():
            rates[name].append(rate(fn, args.steps, warmup))
        print(f"round {r + 1:>2}: " + "  ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()) + " steps/s",
              flush=True)
    whole = _train_lora_rate(model_dir, items, cfg.with_overrides({"max_train_steps": 60}), root / "run", 10)
    switch, reload = _switch_vs_reload(model_dir, root, root / "run" / "out.safetensors")
    o, b, n = (statistics.median(rates[k]) for k in ("lorastrap", "bare", "naive"))
    print(f"\ntiny model, 64 px, batch {args.batch}, rank 4, {args.threads} thread(s), "
          f"median of {args.rounds} interleaved blocks × {args.steps} steps")
    print(f"{'measurement':<50}{'result':>14}{'target':>10}")
    print(f"{'lorastrap step loop steps/s':<50}{o:>14.1f}")
    print(f"{'bare UNet fwd+bwd on cached inputs steps/s':<50}{b:>14.1f}")
    print(f"{'naive loop (load + VAE + text encoder per step)':<50}{n:>14.1f}")
    print(f"{'whole train_lora run, steps 10-60, steps/s':<50}{whole:>14.1f}")
    print(f"{'efficiency lorastrap / bare':<50}{o / b:>14.2f}{'≥ 0.90':>10}")
    print(f"{'speed-up lorastrap / naive':<50}{o / n:>13.2f}×{'≥ 2×':>10}")
    print(f"{'adapter switch / reload two LoRAs (ms)':<50}{switch * 1e3:>6.2f} / {reload * 1e3:>5.1f}")
    print(f"{'switch ÷ reload':<50}{switch / reload:>14.3f}{'≤ 0.05':>10}")


# ----------------------------------------------------------------------------------- GPU mode
SD15_UNET = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280))
SD15_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12)
# --smoke: the same code paths with a tiny model on the CPU (checks the script, measures nothing)
SMOKE = dict(unet=dict(sample_size=8, cross_attention_dim=768, attention_head_dim=8, layers_per_block=1,
                       block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")),
             vae=dict(block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=8,
                      down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
             text=dict(vocab_size=49408, hidden_size=768, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=12),
             size=64)
SIZES = {"unet": SD15_UNET, "vae": SD15_VAE, "text": SD15_TEXT, "size": 512}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def _sd15_parts(device: torch.device, seed: int):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(seed)
    with device:
        unet = UNet2DConditionModel(**SIZES["unet"])
        vae = AutoencoderKL(**SIZES["vae"])
        te = None
        try:
            from transformers import CLIPTextConfig, CLIPTextModel

            te = CLIPTextModel(CLIPTextConfig(**SIZES["text"]))
        except ImportError:
            pass
    for m in (unet, vae, te):
        if m is not None:
            m.requires_grad_(False)
    unet.add_adapter(lora_config(16, 16.0, TARGETS, 0.0), adapter_name=ADAPTER)
    return unet, vae, te


def _plain_loop(device, batch: int, steps: int, warmup: int, pixels, ids) -> tuple[float, float]:
    """diffusers-example style: encode every step, bf16 weights, default AdamW, loss.item()."""
    from diffusers import DDPMScheduler

    unet, vae, te = _sd15_parts(device, 0)
    dtype = torch.bfloat16
    place_trainable([unet], device, dtype)
    vae.to(dtype)
    if te is not None:
        te.to(dtype)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4)
    fixed_hidden = torch.randn(batch, 77, 768, device=device, dtype=dtype)
    _reset_peak(device)

    def step(i: int) -> None:
        sel = [(i * batch + k) % len(pixels) for k in range(batch)]
        with torch.no_grad():
            latents = vae.encode(pixels[sel].to(dtype)).latent_dist.sample() * 0.18215
            hidden = te(ids[sel])[0] if te is not None else fixed_hidden
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (batch,), device=device)
        pred = unet(sched.add_noise(latents, noise, t), t, hidden).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in unet.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    r = rate(step, steps, warmup, lambda: _sync(device))
    return r * batch, _peak_gib(device)


def _lorastrap_loop(device, batch: int, steps: int, warmup: int, pixels, ids, compile_unet: bool,  # type: ignore[no-untyped-def]
                    channels_last: bool = True):
    from diffusers import DDPMScheduler

    unet, vae, te = _sd15_parts(device, 0)
    cfg = TrainConfig.from_preset("style", max_train_steps=10_000, batch_size=batch, rank=16, alpha=16.0,
                                  mixed_precision="bf16", channels_last=channels_last, compile_unet=compile_unet,
                                  caption_dropout=0.0, lr_warmup_steps=0)
    dtype = torch.bfloat16
    samples, hidden = [], []
    with torch.no_grad():  # the cache lorastrap fills once (on disk in real runs)
        for i in range(len(pixels)):
            dist = vae.encode(pixels[i:i + 1]).latent_dist
            side = SIZES["size"]
            samples.append(Sample((side, side), [(dist.mean[0], dist.std[0])], torch.zeros(6), [i + 1]))
            hidden.append(te(ids[i:i + 1])[0][0] if te is not None else torch.randn(77, 768, device=device))
    hidden.insert(0, torch.zeros_like(hidden[0]))  # the empty caption (dropout)
    data = PreparedData(samples, [""] * len(hidden), {"hidden": torch.stack(hidden)})
    del vae, te
    if device.type == "cuda":
        torch.cuda.empty_cache()
    place_trainable([unet], device, dtype)
    if channels_last:
        unet.to(memory_format=torch.channels_last)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    models = Models(None, "sd15", unet, None, None, sched, "epsilon", 16, 16.0, [], dtype)
    accelerator = make_accelerator("bf16")
    objective = Objective(models, data, cfg, device)
    optimizer = make_optimizer(models, cfg, device)
    prepared, optimizer = accelerator.prepare(unet, optimizer)
    objective.unet = torch.compile(prepared) if compile_unet else prepared
    runner = StepRunner(objective, optimizer, accelerator, BatchSchedule(samples, batch, cfg.seed), cfg, prepared)
    _reset_peak(device)
    losses = []
    r = rate(lambda i: losses.append(runner.step(i)[1]), steps, warmup, lambda: _sync(device))
    torch.stack(losses).cpu()  # lorastrap reads losses back every few steps, not every step
    return r * batch, _peak_gib(device)


def gpu_mode(args: argparse.Namespace) -> None:
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32: []"
    if args.smoke:
        SIZES.update(SMOKE)
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        sys.exit("--gpu needs a CUDA device (or --smoke to check the script on the CPU)")
    else:
        device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    n = max(16, args.large_batch)
    gen = torch.Generator(device=device).manual_seed(0)
    side = SIZES["size"]
    pixels = torch.rand(n, 3, side, side, device=device, generator=gen) * 2 - 1
    ids = torch.randint(0, 49407, (n, 77), device=device, generator=gen)
    rows = []
    loops = [("plain diffusers+peft", lambda b, s, w: _plain_loop(device, b, s, w, pixels, ids)),
             ("lorastrap", lambda b, s, w: _lorastrap_loop(device, b, s, w, pixels, ids, args.compile)),
             ("lorastrap-nchw", lambda b, s, w: _lorastrap_loop(device, b, s, w, pixels, ids, args.compile,
                                                                  channels_last=False))]
    wanted = {name.strip() for name in args.only.split(",")} if args.only else None
    loops = [loop for loop in loops if wanted is None or loop[0] in wanted]
    for batch, steps, warmup in ((1, 60, 20), (args.large_batch, 8, 3)):
        for name, run in loops:
            fn = lambda: run(batch, steps, warmup)  # noqa: E731
            t0 = time.perf_counter()
            ips, mem = fn()
            rows.append((batch, name, ips, mem))
            print(f"batch {batch:>3}  {name:<22} {ips:8.1f} img/s  peak {mem:5.1f} GiB "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    te = "CLIP text encoder" if _has_transformers() else "fixed random text embeddings (no transformers)"
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU smoke run (tiny sizes)"
    print(f"\n{name}, SD 1.5-size UNet, {side} px, bf16, LoRA r16, {te}"
          f"{', torch.compile' if args.compile else ''}")
    print(f"{'batch':>5}  {'loop':<22}{'img/s':>9}{'peak GiB':>10}{'× plain':>9}")
    for batch, name, ips, mem in rows:
        plain = next((r[2] for r in rows if r[0] == batch and r[1].startswith("plain")), float("nan"))
        print(f"{batch:>5}  {name:<22}{ips:>9.1f}{mem:>10.1f}{ips / plain:>9.2f}")


def _has_transformers() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="SD 1.5-size model on CUDA instead of the tiny model")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per CPU block")
    parser.add_argument("--batch", type=int, default=4, help="CPU batch size")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved CPU blocks per loop (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--large-batch", type=int, default=32, help="GPU large batch size")
    parser.add_argument("--compile", action="store_true", help="GPU: torch.compile the UNet in lorastrap's loop")
    parser.add_argument("--only", help='GPU: comma-separated loops to run, of "plain diffusers+peft", '
                        '"lorastrap", "lorastrap-nchw" (default: all)')
    parser.add_argument("--smoke", action="store_true", help="with --gpu: tiny sizes on the CPU, to check the script")
    args = parser.parse_args()
    gpu_mode(args) if args.gpu else cpu_mode(args)


if __name__ == "__main__":
    main()
