"""Pretrain the lab model from scratch: draw the world, train the VAE, then the UNet and the text
encoder on cached latents; evaluate generations with the reader; save fp16 safetensors.

    python -m lorastrap.lab.pretrain --out DIR [--device cuda] [--time-budget-s 330]

Needs only torch, diffusers, transformers, safetensors, numpy and pillow (tqdm, if present, for a bar), so it
runs on a bare GPU machine. Seeded; resumable (`--resume`, state in DIR.ckpt/); the step counts a
time budget settles on are printed and recorded, and passing them back (`--vae-steps`,
`--unet-steps`) repeats the run without a budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lorastrap.lab import model_config as mc
from lorastrap.lab.dataset import CaptionTokens, draw_set
from lorastrap.lab.loras import contact_sheet
from lorastrap.lab.scoring import format_score, score
from lorastrap.lab.train_phases import (
    EMA,
    Runtime,
    denoiser_step_fn,
    encode_all,
    make_optimizer,
    run_steps,
    vae_step_fn,
)
from lorastrap.lab.world import HELD_OUT, STYLES, TRAIN_STYLES, VIEWS, caption, training_characters
from lorastrap.training.checkpoint import load_state, save_state


@dataclass
class PretrainOptions:
    out: Path
    device: str = "auto"
    seed: int = 0
    time_budget_s: float | None = 300.0
    vae_steps: int | None = None
    unet_steps: int | None = None
    vae_share: float = 0.3
    n_images: int | None = None
    vae_batch: int | None = None
    unet_batch: int | None = None
    vae_lr: float = 4e-4
    unet_lr: float = 4e-4
    eval_images: int | None = None
    eval_steps: int | None = None
    workers: int | None = None
    resume: bool = False
    checkpoint_every_s: float = 120.0
    progress: bool = True
    sheet: Path | None = None

    def defaults_for(self, cuda: bool) -> None:
        pick = lambda v, gpu, cpu: v if v is not None else (gpu if cuda else cpu)  # noqa: E731
        self.n_images = pick(self.n_images, 50_000, 3_000)
        self.vae_batch = pick(self.vae_batch, 128, 16)
        self.unet_batch = pick(self.unet_batch, 256, 32)
        self.eval_images = pick(self.eval_images, 500, 40)
        self.eval_steps = pick(self.eval_steps, 25, 12)


def log(msg: str) -> None:
    print(f"[lab pretrain] {msg}", flush=True)


def _machine(device: torch.device) -> str:
    cpu = f"{os.cpu_count()} CPU cores, {platform.machine()}"
    return f"{torch.cuda.get_device_name(device)}, {cpu}" if device.type == "cuda" else cpu


def _n_params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _eval_prompts(n: int, seed: int) -> list[tuple[str, dict, int, str]]:
    """Half trained characters, half held-out ones ("new characters"), all views, trained styles."""
    rng = random.Random(seed + 99)
    trained = training_characters()
    out = []
    for i in range(n):
        group = "held_out" if i % 2 else "trained"
        char = rng.choice(HELD_OUT) if i % 2 else rng.choice(trained)
        view, style = VIEWS[(i // 2) % len(VIEWS)], rng.choice(TRAIN_STYLES)
        out.append((caption(char, view, style), {**char.attrs(), "view": view}, 10_000 + i, group))
    return out


def evaluate(pipe, n: int, steps: int, seed: int, cuda: bool, sheet: Path | None = None) -> dict:
    prompts = _eval_prompts(n, seed)
    from lorastrap.models.generation import generate_images

    with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
        images = generate_images(pipe, [p[0] for p in prompts], [p[2] for p in prompts], steps=steps,
                                 cfg=4.0, max_batch=250 if cuda else 20)
    if sheet is not None:  # rows alternate trained / held-out characters, views cycle
        contact_sheet(images[:100]).save(sheet)
    result: dict = {}
    for group in ("trained", "held_out"):
        sel = [i for i, p in enumerate(prompts) if p[3] == group]
        result[group] = score([images[i] for i in sel], [prompts[i][1] for i in sel])
        result[group]["by_view"] = {
            v: score([images[i] for i in sel if prompts[i][1]["view"] == v],
                     [prompts[i][1] for i in sel if prompts[i][1]["view"] == v])["all"] for v in VIEWS}
    result["all_views"] = score(images, [p[1] for p in prompts])
    return result


def _save_model(pipe, out: Path, record: dict) -> None:
    """fp16 safetensors via save_pretrained, into a temporary sibling swapped in at the end."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for module in (pipe.vae, pipe.text_encoder, pipe.unet):
            module.to("cpu", torch.float16)
        pipe.save_pretrained(str(stage), safe_serialization=True)
        (stage / mc.MARKER).write_text(json.dumps(record, indent=1))
        for path in stage.rglob("*"):  # mkdtemp is private; package data should be readable
            path.chmod(0o755 if path.is_dir() else 0o644)
        stage.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def pretrain(opts: PretrainOptions) -> dict:
    t_start = time.perf_counter()
    dev = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(dev)
    cuda = device.type == "cuda"
    opts.defaults_for(cuda)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    rt = Runtime(device, opts.seed, opts.progress)
    out = Path(opts.out)
    ck_dir = out.with_name(out.name + ".ckpt")
    ck_path = ck_dir / "state.safetensors"  # one file: training/checkpoint.py's save_state
    saved, saved_opt, info = load_state(ck_path) if opts.resume and ck_path.is_file() else ({}, None, None)
    if info is None:
        info = {"phase": "vae", "step": 0, "vae_total": opts.vae_steps, "unet_total": opts.unet_steps}
    budget = opts.time_budget_s
    reserve = (20.0 if cuda else 0.2 * budget) if budget else 0.0
    remaining = lambda: None if budget is None else budget - reserve - (time.perf_counter() - t_start)  # noqa: E731
    record: dict = {"command": " ".join(["python -m lorastrap.lab.pretrain", *sys.argv[1:]]),
                    "options": {k: str(v) for k, v in asdict(opts).items()},
                    "machine": _machine(device), "torch": torch.__version__}

    t = time.perf_counter()
    train_set = draw_set(opts.n_images, opts.seed, workers=opts.workers)
    vae_set = draw_set(opts.n_images // 2, opts.seed + 1, styles=STYLES, workers=opts.workers)
    record["draw_s"] = round(time.perf_counter() - t, 1)
    log(f"drew {len(train_set)} + {len(vae_set)} images in {record['draw_s']} s on {_machine(device)}")
    tok_dir = Path(tempfile.mkdtemp(prefix="lab-tok-"))
    tokenizer = mc.build_tokenizer(tok_dir)

    # ---- VAE
    torch.manual_seed(opts.seed + 1)
    vae = mc.build_vae().to(device, memory_format=torch.channels_last)
    opt = make_optimizer(vae.parameters(), opts.vae_lr, device)
    if info["phase"] != "vae":
        vae.load_state_dict(saved["vae"])
    if info["phase"] == "vae":
        if info["step"]:
            vae.load_state_dict(saved["vae"])
            opt.load_state_dict(saved_opt)
        pixels = torch.from_numpy(vae_set.pixels).to(device)
        share = remaining()
        save = lambda step, total: save_state(  # noqa: E731
            ck_path, {"vae": vae.state_dict()}, opt.state_dict(), {**info, "step": step, "vae_total": total})
        res = run_steps("vae", rt, vae_step_fn(vae, opt, pixels, rt, opts.vae_batch), opt, opts.vae_lr,
                        opts.vae_batch, start=info["step"], total=info["vae_total"],
                        budget_s=None if share is None else opts.vae_share * share,
                        checkpoint=save, checkpoint_every_s=opts.checkpoint_every_s)
        info.update(phase="unet", step=0, vae_total=res.steps, vae_result=asdict(res))
        save_state(ck_path, {"vae": vae.state_dict()}, None, info)
        del pixels
    record["vae"] = {**info["vae_result"], "batch": opts.vae_batch, "lr": opts.vae_lr,
                     "params": _n_params(vae)}
    log(f"vae: {info['vae_total']} steps, loss {info['vae_result']['final_loss']:.4f}, "
        f"{info['vae_result']['samples_per_s']:.0f} img/s")
    vae.eval().requires_grad_(False)

    # ---- latents, scaling factor, and the VAE's ceiling (reader accuracy of reconstructions)
    pixels = torch.from_numpy(train_set.pixels).to(device)
    mean, std = encode_all(vae, pixels, rt)
    if "scaling" not in info:  # kept in the checkpoint: the UNet is trained against this number
        g = torch.Generator(device).manual_seed(opts.seed)
        z = mean[:4096] + std[:4096] * torch.randn(mean[:4096].shape, device=device, generator=g)
        info["scaling"] = float(1.0 / z.std())
    scaling = record["scaling_factor"] = info["scaling"]
    vae.register_to_config(scaling_factor=scaling)
    with torch.no_grad(), rt.autocast():
        rec = vae.decode(mean[:256]).sample.float().clamp(-1, 1)
    from PIL import Image

    rec_u8 = ((rec + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    truths = [{**s.character.attrs(), "view": s.view} for s in train_set.samples[:256]]
    record["vae_reconstruction"] = {
        "mse": round(float(((rec_u8 / 255.0 - train_set.pixels[:256] / 255.0) ** 2).mean()), 5),
        **score([Image.fromarray(a) for a in rec_u8], truths)}
    log(f"vae reconstructions: mse {record['vae_reconstruction']['mse']}, "
        f"{format_score(record['vae_reconstruction'])}; scaling factor {scaling:.4f}")
    del pixels

    # ---- UNet + text encoder
    torch.manual_seed(opts.seed + 2)
    text_encoder = mc.build_text_encoder(tokenizer).to(device)
    torch.manual_seed(opts.seed + 3)
    unet = mc.build_unet().to(device, memory_format=torch.channels_last)
    opt = make_optimizer([*unet.parameters(), *text_encoder.parameters()], opts.unet_lr, device)
    ema = EMA([unet, text_encoder])
    modules = {"vae": vae, "unet": unet, "text_encoder": text_encoder}
    if info["phase"] == "unet" and info["step"]:
        unet.load_state_dict(saved["unet"])
        text_encoder.load_state_dict(saved["text_encoder"])
        opt.load_state_dict(saved_opt)
        ema.load(saved["ema"])
    if info["phase"] == "unet":
        tokens = CaptionTokens(tokenizer, mc.MAX_TOKENS)
        samples = train_set.samples
        captions = lambda idx, rng: torch.tensor(  # noqa: E731
            [tokens.augmented(samples[i], rng) for i in idx], dtype=torch.long)
        save = lambda step, total: save_state(  # noqa: E731
            ck_path, {**{n: m.state_dict() for n, m in modules.items()}, "ema": ema.state()}, opt.state_dict(),
            {**info, "step": step, "unet_total": total})
        step_fn = denoiser_step_fn(unet, text_encoder, opt, ema, (mean, std), scaling, captions, rt,
                                   opts.unet_batch)
        res = run_steps("unet+text", rt, step_fn, opt, opts.unet_lr, opts.unet_batch,
                        start=info["step"], total=info["unet_total"], budget_s=remaining(),
                        checkpoint=save, checkpoint_every_s=opts.checkpoint_every_s)
        info.update(phase="done", step=res.steps, unet_total=res.steps, unet_result=asdict(res))
        save_state(ck_path, {**{n: m.state_dict() for n, m in modules.items()}, "ema": ema.state()}, None, info)
    else:  # finished training, interrupted while evaluating or saving
        unet.load_state_dict(saved["unet"])
        text_encoder.load_state_dict(saved["text_encoder"])
        ema.load(saved["ema"])
    record["unet_text"] = {**info["unet_result"], "batch": opts.unet_batch, "lr": opts.unet_lr,
                           "params": {"unet": _n_params(unet), "text_encoder": _n_params(text_encoder)},
                           "ema_decay": ema.decay}
    log(f"unet+text: {info['unet_total']} steps, loss {info['unet_result']['final_loss']:.4f}, "
        f"{info['unet_result']['samples_per_s']:.0f} img/s")
    ema.copy_to([unet, text_encoder])
    unet.eval()
    text_encoder.eval()
    del mean, std, ema, opt

    # ---- evaluate generations with the reader, save fp16
    pipe = mc.assemble_pipeline(vae, text_encoder, tokenizer, unet.to(memory_format=torch.contiguous_format))
    t = time.perf_counter()
    record["generated"] = evaluate(pipe, opts.eval_images, opts.eval_steps, opts.seed, cuda, opts.sheet)
    record["eval"] = {"images": opts.eval_images, "ddim_steps": opts.eval_steps, "guidance": 4.0,
                      "seconds": round(time.perf_counter() - t, 1)}
    for group in ("trained", "held_out"):
        log(f"generated ({group} characters, all views): {format_score(record['generated'][group])}")
    record["total_s"] = round(time.perf_counter() - t_start, 1)
    record["steps"] = {"vae": info["vae_total"], "unet": info["unet_total"]}
    _save_model(pipe, out, record)
    shutil.rmtree(ck_dir, ignore_errors=True)
    shutil.rmtree(tok_dir, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"saved {out} ({size / 1e6:.1f} MB) in {record['total_s']} s total; repeat with "
        f"--vae-steps {info['vae_total']} --unet-steps {info['unet_total']} --seed {opts.seed}")
    return record


def parse_args(argv: list[str] | None = None) -> PretrainOptions:
    p = argparse.ArgumentParser(prog="python -m lorastrap.lab.pretrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="model folder to write (replaced)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget-s", type=float, default=300.0,
                   help="whole-run budget used to size the phases (ignored for phases given steps)")
    p.add_argument("--vae-steps", type=int)
    p.add_argument("--unet-steps", type=int)
    p.add_argument("--vae-share", type=float, default=0.3, help="fraction of the training time for the VAE")
    p.add_argument("--n-images", type=int, help="drawn training images (default 50000 GPU / 3000 CPU)")
    p.add_argument("--vae-batch", type=int)
    p.add_argument("--unet-batch", type=int)
    p.add_argument("--vae-lr", type=float, default=4e-4)
    p.add_argument("--unet-lr", type=float, default=4e-4)
    p.add_argument("--eval-images", type=int)
    p.add_argument("--eval-steps", type=int)
    p.add_argument("--workers", type=int, help="drawing processes (default: CPU count, at most 16)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt/ if it is there")
    p.add_argument("--checkpoint-every-s", type=float, default=120.0)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--sheet", type=Path, help="write a PNG contact sheet of evaluation images here")
    return PretrainOptions(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    pretrain(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
