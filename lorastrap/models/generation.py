"""Batched generation: one pipeline serves a whole batch; LoRAs are named adapters whose weights
are switched with `set_adapters` (milliseconds) instead of being reloaded (a hundred times
slower). Every image carries A1111 `parameters` and a `lorastrap` provenance chunk."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

import lorastrap
from lorastrap.kernel.budget import gib, over_budget
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.pngmeta import format_a1111_parameters, write_png
from lorastrap.kernel.progress import progress_bar
from lorastrap.models.base import BaseModelRef, as_ref, load_pipeline
from lorastrap.models.device import inference_dtype, oom_as_user_error, pick_device
from lorastrap.models.hashing import addnet_hash, sha256_file
from lorastrap.models.start_image import StartImage, colour_layout, image_to_image_pipeline

if TYPE_CHECKING:
    from lorastrap.models.lora import LoraFile

# name → (diffusers scheduler class, A1111 sampler label)
SAMPLERS = {
    "ddim": ("DDIMScheduler", "DDIM"),
    "euler": ("EulerDiscreteScheduler", "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", "DPM++ 2M"),
}
MAX_BATCH = 8


@dataclass
class GenRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    cfg: float = 6.0
    width: int | None = None   # None: the model's native size
    height: int | None = None
    view: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    start: StartImage | None = None  # None: pure noise (txt2img)


@dataclass
class GeneratedImage:
    image: Image.Image
    parameters: str
    provenance: dict[str, Any]


@dataclass
class ActiveLora:
    name: str
    path: str
    sha256: str
    short_hash: str        # A1111 `Lora hashes`: the first 12 digits of the tensor-data hash
    weight: float | dict


@dataclass
class GenContext:
    """What the parameters/provenance say about the model side of an image."""
    model_name: str
    model_hash: str
    sampler: str
    loras: list[ActiveLora] = field(default_factory=list)


def set_sampler(pipe, name: str) -> str:
    """Install sampler `name` on the pipeline; return its A1111 label."""
    import diffusers

    try:
        cls_name, label = SAMPLERS[name]
    except KeyError:
        raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None
    extra = {"steps_offset": 1} if name == "ddim" else {}
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **extra)
    return label


def native_size(pipe) -> int:
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def _parameters(req: GenRequest, ctx: GenContext, size: tuple[int, int]) -> str:
    prompt = req.prompt
    for lora in ctx.loras:
        weight = lora.weight if isinstance(lora.weight, (int, float)) else 1
        prompt += f" <lora:{lora.name}:{weight:g}>"
    settings: dict[str, object] = {
        "Steps": req.steps, "Sampler": ctx.sampler, "CFG scale": f"{req.cfg:g}", "Seed": req.seed,
        "Size": f"{size[0]}x{size[1]}", "Model hash": ctx.model_hash[:10], "Model": ctx.model_name,
    }
    if req.start is not None:
        settings["Denoising strength"] = f"{req.start.strength:g}"  # A1111's img2img key
    if ctx.loras:
        settings["Lora hashes"] = ", ".join(f"{l.name}: {l.short_hash}" for l in ctx.loras)
    settings["Version"] = f"lorastrap {lorastrap.__version__}"
    return format_a1111_parameters(prompt, req.negative_prompt, settings)


def _provenance(req: GenRequest, ctx: GenContext, size: tuple[int, int]) -> dict[str, Any]:
    return {
        **req.extra,
        "prompt": req.prompt, "negative": req.negative_prompt, "seed": req.seed, "view": req.view,
        "steps": req.steps, "cfg": req.cfg, "sampler": ctx.sampler, "width": size[0], "height": size[1],
        "model": {"name": ctx.model_name, "sha256": ctx.model_hash},
        "lora": [{"name": l.name, "path": l.path, "sha256": l.sha256, "weight": l.weight} for l in ctx.loras],
        **({"start": req.start.record()} if req.start is not None else {}),
    }


def adapter_module_count(pipe, adapter: str) -> int:  # type: ignore[no-untyped-def]
    """How many modules of the pipeline's UNet and text encoders carry adapter `adapter`."""
    count = 0
    for part in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, part, None)
        for module in model.modules() if model is not None else ():
            lora_a = getattr(module, "lora_A", None)
            count += int(isinstance(lora_a, torch.nn.ModuleDict) and adapter in lora_a)
    return count


def run_requests(pipe, requests: Sequence[GenRequest], ctx: GenContext,
                 max_batch: int = MAX_BATCH, progress: bool = False) -> list[GeneratedImage]:
    """Generate every request with `pipe`, batching requests that share steps/cfg/size.

    Each image has its own seeded start noise, so it is the same image whatever its batch-mates,
    up to float rounding: batched kernels on a CPU sum in a batch-size-dependent order (measured on
    the tiny model: ≤ 1e-6 in the UNet output, now and then one 8-bit level in a pixel). The same
    requests in the same batches reproduce bit for bit.
    """
    native = native_size(pipe)
    device = pipe._execution_device
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        strength = r.start.strength if r.start is not None else None
        groups.setdefault((r.steps, r.cfg, r.width or native, r.height or native, strength), []).append(i)
    i2i = image_to_image_pipeline(pipe) if any(r.start is not None for r in requests) else None
    _check_memory(requests, native)
    results: list[GeneratedImage | None] = [None] * len(requests)
    bar = progress_bar(len(requests), "generating", "img", enabled=progress)
    for (steps, cfg, width, height, strength), indices in groups.items():
        for start in range(0, len(indices), max_batch):
            chunk = [requests[i] for i in indices[start:start + max_batch]]
            generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in chunk]
            with oom_as_user_error(f"generating {len(chunk)} images of {width}x{height}",
                                   "generate fewer per view or a smaller size"), torch.no_grad():
                common = dict(prompt=[r.prompt for r in chunk], negative_prompt=[r.negative_prompt for r in chunk],
                              num_inference_steps=steps, guidance_scale=cfg, generator=generators, output_type="np")
                if strength is None:
                    pixels = pipe(**common, width=width, height=height,
                                  latents=_initial_latents(pipe, generators, width, height, device)).images
                else:  # the noise comes from the CPU generators here too (device-independent)
                    starts = [colour_layout(r.start.image, (width, height), r.start.blur) for r in chunk]  # type: ignore[union-attr]
                    pixels = i2i(**common, image=starts, strength=strength).images
            _check_finite(pixels, chunk, ctx)
            images = pipe.image_processor.numpy_to_pil(pixels)  # what output_type="pil" does
            for i, req, img in zip(indices[start:start + max_batch], chunk, images):
                size = (width, height)
                results[i] = GeneratedImage(img, _parameters(req, ctx, size), _provenance(req, ctx, size))
            bar.update(len(chunk))
    bar.close()
    return [r for r in results if r is not None]


def generate_images(pipe, prompts: Sequence[str], seeds: Sequence[int], *, steps: int, cfg: float,
                    negative: str = "", max_batch: int = MAX_BATCH) -> list[Image.Image]:
    """One plain image per (prompt, seed) from any pipeline with its own sampler, through
    `run_requests` (the fidelity lab measures with it; no PNG metadata is kept)."""
    if len(prompts) != len(seeds):
        raise ValueError("need one seed per prompt")
    requests = [GenRequest(prompt=p, negative_prompt=negative, seed=int(s), steps=steps, cfg=cfg)
                for p, s in zip(prompts, seeds)]
    ctx = GenContext("", "", type(pipe.scheduler).__name__)
    return [g.image for g in run_requests(pipe, requests, ctx, max_batch=max_batch)]


def _check_memory(requests: Sequence[GenRequest], native: int) -> None:
    """Every image is held until the batch is saved: refuse a request that cannot fit."""
    needed = sum(3 * (r.width or native) * (r.height or native) for r in requests)  # RGB bytes
    usable = over_budget(needed)
    if usable is not None:
        raise UserError(f"{len(requests)} images need about {gib(needed)} of memory, more than the "
                        f"{gib(usable)} available; generate fewer at a time (--per-view, --views)")


class NonFiniteImage(UserError):
    """A generated image came out NaN/inf: refused, never written as a black picture."""


def _check_finite(pixels: np.ndarray, chunk: Sequence[GenRequest], ctx: GenContext) -> None:
    """diffusers turns NaN pixels into black ones without a word (fp16 VAE overflow, a LoRA with
    non-finite weights, a runaway CFG); refuse them so nothing is written."""
    bad = ~np.isfinite(pixels).reshape(len(pixels), -1).all(axis=1)
    if not bad.any():
        return
    first = chunk[int(np.argmax(bad))]
    loras = ", ".join(f"{l.name} at {l.weight}" for l in ctx.loras) or "none"
    raise NonFiniteImage(
        f"generation produced non-finite (NaN/inf) pixels in {int(bad.sum())} of {len(chunk)} image(s) "
        f"(first: seed {first.seed}, cfg {first.cfg:g}, LoRAs: {loras}); nothing was written. Check the "
        "LoRA weights (a damaged or diverged LoRA), lower its weight or the CFG, or run the model in fp32")


def _initial_latents(pipe, generators, width: int, height: int, device) -> torch.Tensor:
    """Start noise drawn on the CPU per image: the same seed gives the same image on any device."""
    shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    noise = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return noise.to(device, pipe.unet.dtype)


def save_generated(img: GeneratedImage, path: Path) -> Path:
    """Write the PNG with `parameters` and `lorastrap` chunks, atomically."""
    return write_png(Path(path), img.image, img.parameters, img.provenance)


class Generator:
    """Holds one pipeline; LoRAs are loaded once as named adapters and re-weighted in place."""

    def __init__(self, base: BaseModelRef | Path | str, device=None, scheduler: str = "ddim",
                 dtype: torch.dtype | None = None, search_root: Path | None = None) -> None:
        self.ref = as_ref(base, search_root)
        self.device = pick_device(device)
        self.pipe = load_pipeline(self.ref, self.device, dtype or inference_dtype(self.device))
        self.sampler = set_sampler(self.pipe, scheduler)
        self.loras: dict[str, ActiveLora] = {}
        self.weights: dict[str, float | dict] = {}

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pipe = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def base(self):  # type: ignore[no-untyped-def]
        """The base model's module table that every LoRA is checked against (validate.py)."""
        from lorastrap.models.lora.validate import base_modules

        return base_modules(self.ref)

    def add_lora(self, source: "Path | LoraFile", name: str) -> None:
        """Load a LoRA file (or an already parsed one) as adapter `name`, checked against the base
        model first; every module must land in the pipeline (no silent drops)."""
        from lorastrap.models.lora import diffusers_state, read_lora
        from lorastrap.models.lora.validate import check_fits

        if name in self.loras:
            raise UserError(f"a LoRA named {name!r} is already loaded; pick another name")
        lora = read_lora(source, self.base.blocks) if isinstance(source, (str, Path)) else source
        check_fits(lora, self.base)
        with warnings.catch_warnings():  # peft warns on every adapter after the first: expected here
            warnings.filterwarnings("ignore", message=".*peft_config.*multiple adapters.*")
            self.pipe.load_lora_weights(diffusers_state(lora), adapter_name=name)
        loaded = adapter_module_count(self.pipe, name)
        if loaded != len(lora.modules):
            raise UserError(f"diffusers applied {loaded} of the {len(lora.modules)} modules of {lora.name}; "
                            "report this file's key names as a lorastrap bug")
        path = lora.path
        self.loras[name] = ActiveLora(name, str(path or name), sha256_file(path) if path else "",
                                      addnet_hash(path)[:12] if path else "", 1.0)
        self.set_weights({**self.weights, name: 1.0})

    def set_weights(self, weights: Mapping[str, float | dict]) -> None:
        """Activate exactly these adapters at these weights (a float, or a per-block dict such
        as {"unet": {"down": 0.5, "up": {"block_1": [0.0, 1.0]}}}); empty → base model only."""
        unknown = sorted(set(weights) - set(self.loras))
        if unknown:
            raise UserError(f"LoRA(s) {', '.join(unknown)} not loaded; add_lora them first")
        self.weights = dict(weights)
        if not self.weights:
            if self.loras:
                self.pipe.disable_lora()
            return
        self.pipe.enable_lora()
        self.pipe.set_adapters(list(self.weights), adapter_weights=list(self.weights.values()))

    def context(self) -> GenContext:
        active = [ActiveLora(**{**self.loras[n].__dict__, "weight": w}) for n, w in self.weights.items()]
        return GenContext(self.ref.name, self.ref.sha256, self.sampler, active)

    def generate(self, requests: Sequence[GenRequest], progress: bool = False) -> list[GeneratedImage]:
        if self.pipe is None:
            raise RuntimeError("generator is closed")
        return run_requests(self.pipe, requests, self.context(), progress=progress)
