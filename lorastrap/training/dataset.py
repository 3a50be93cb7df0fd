"""Training items → bucketed, pre-encoded samples (latents and caption embeddings computed once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.imageio import DecodeError, decode_image
from lorastrap.kernel.progress import progress_bar
from lorastrap.models.hashing import sha256_file
from lorastrap.training.buckets import fit_to_bucket, make_buckets, nearest_bucket
from lorastrap.training.cache import TensorCache, latent_key, text_key
from lorastrap.training.captions import caption_variants
from lorastrap.training.config import TrainConfig
from lorastrap.training.encode import TextStack, encode_images, encode_text, image_to_tensor, time_ids

_ENCODE_BATCH = 8
_MAX_TRAIN_PIXELS = 64_000_000  # as [images] max_pixels: the bomb guard of every intake


@dataclass
class TrainItem:
    image_path: Path
    caption: str
    repeats: int = 1
    image_sha256: str | None = None
    subset: str | None = None  # kohya folder name for ss_tag_frequency; default: the parent folder

    @property
    def subset_name(self) -> str:
        return self.subset or Path(self.image_path).parent.name or "images"


@dataclass
class Sample:
    bucket: tuple[int, int]                      # (width, height)
    latents: list[tuple[torch.Tensor, torch.Tensor]]  # (mean, std) per orientation (0: as is, 1: flipped)
    time_ids: torch.Tensor                       # SDXL size/crop conditioning
    captions: list[int]                          # indices into PreparedData.captions
    repeats: int = 1


@dataclass
class PreparedData:
    samples: list[Sample]
    captions: list[str]                          # index 0 is the empty caption (dropout)
    text: dict[str, torch.Tensor] | None         # stacked embeddings, when the TE is frozen
    cache_stats: dict[str, int] = field(default_factory=dict)


def load_rgb(path: Path) -> Image.Image:
    """Open an image (upright, 8-bit sRGB: lorastrap.kernel.imageio), composite transparency on white."""
    try:
        img = decode_image(Path(path), animated="first", max_pixels=_MAX_TRAIN_PIXELS).image
    except FileNotFoundError:
        raise UserError(f"training image {path} does not exist; re-export the dataset") from None
    except DecodeError as exc:
        raise UserError(f"{exc}; remove it from the dataset or re-save it") from None
    if img.mode == "RGBA":
        canvas = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, img)
    return img.convert("RGB")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF rotation, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            rotated = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - load_rgb raises the user-facing error
        return load_rgb(path).size
    return (h, w) if rotated else (w, h)


def _encode_latents(items: Sequence[TrainItem], shas: list[str], buckets: list[tuple[int, int]],
                    flips: list[bool], vae, model_hash: str, cache: TensorCache, persist: bool,
                    progress: bool) -> tuple[list[list[tuple]], list[torch.Tensor]]:
    per_item: list[list[tuple]] = [[None] * len(flips) for _ in items]
    tids: list[torch.Tensor] = []
    todo: dict[tuple[int, int], list[tuple[int, int, torch.Tensor, str]]] = {}
    for i, item in enumerate(items):
        img = None
        for f, flip in enumerate(flips):
            key = latent_key(shas[i], model_hash, buckets[i], flip)
            hit = cache.get(key)
            if hit is not None and "time_ids" in hit:
                per_item[i][f] = (hit["mean"], hit["std"])
                if f == 0:
                    tids.append(hit["time_ids"])
                continue
            if img is None:
                img = load_rgb(Path(item.image_path))
            fitted, crop = fit_to_bucket(img, buckets[i])
            if f == 0:
                tids.append(time_ids((img.height, img.width), crop, (buckets[i][1], buckets[i][0])))
            if flip:
                fitted = ImageOps.mirror(fitted)
            todo.setdefault(buckets[i], []).append((i, f, image_to_tensor(fitted), key))
    total = sum(len(v) for v in todo.values())
    with progress_bar(total, "caching latents", "img", enabled=progress and bool(total)) as bar:
        for group in todo.values():
            for start in range(0, len(group), _ENCODE_BATCH):
                chunk = group[start:start + _ENCODE_BATCH]
                mean, std = encode_images(vae, torch.stack([c[2] for c in chunk]))
                for (i, f, _, key), m, s in zip(chunk, mean, std):
                    per_item[i][f] = (m.cpu(), s.cpu())
                    if persist:
                        cache.put(key, {"mean": m, "std": s, "time_ids": tids[i]})
                bar.update(len(chunk))
    return per_item, tids


def _encode_captions(captions: list[str], text: TextStack, model_hash: str, cache: TensorCache,
                     persist: bool, device) -> dict[str, torch.Tensor]:
    found: dict[int, dict[str, torch.Tensor]] = {}
    missing = []
    for i, caption in enumerate(captions):
        hit = cache.get(text_key(caption, model_hash))
        if hit is not None:
            found[i] = hit
        else:
            missing.append(i)
    with torch.no_grad():
        for start in range(0, len(missing), _ENCODE_BATCH):
            idx = missing[start:start + _ENCODE_BATCH]
            out = encode_text(text, [captions[i] for i in idx], device)
            for j, i in enumerate(idx):
                found[i] = {k: v[j].float().cpu() for k, v in out.items()}
                if persist:
                    cache.put(text_key(captions[i], model_hash), found[i])
    return {k: torch.stack([found[i][k] for i in range(len(captions))]) for k in found[0]}


def prepare_data(items: Sequence[TrainItem], cfg: TrainConfig, *, resolution: int, bucket_step: int,
                 vae, text: TextStack, model_hash: str, cache_dir: Path, device,
                 progress: bool = True) -> PreparedData:
    """Bucket every item, encode its latents and caption variants (from the cache when present)."""
    if not items:
        raise UserError("the dataset is empty: add images (with .txt captions) to the dataset "
                        "folder or curate some, then train again")
    shas = [it.image_sha256 or sha256_file(Path(it.image_path)) for it in items]
    buckets_all = make_buckets(resolution, bucket_step) if cfg.enable_buckets else [(resolution, resolution)]
    buckets = [nearest_bucket(image_size(Path(it.image_path)), buckets_all) for it in items]
    flips = [False, True] if cfg.flip else [False]
    latent_cache = TensorCache(cache_dir, "latents")
    latents, tids = _encode_latents(items, shas, buckets, flips, vae, model_hash, latent_cache,
                                    cfg.cache_latents, progress)

    captions = [""]
    index = {"": 0}
    samples = []
    for i, it in enumerate(items):
        variants = caption_variants(it.caption, trigger=cfg.trigger, keep_tokens=cfg.keep_tokens,
                                    shuffle=cfg.shuffle_tags, count=cfg.caption_variants, seed=cfg.seed,
                                    tag_dropout=cfg.tag_dropout, droppable=cfg.tag_dropout_tags)
        ids = [index.setdefault(v, len(index)) for v in variants]
        samples.append(Sample(buckets[i], latents[i], tids[i], ids, max(1, it.repeats)))
    captions = list(index)
    stats = {"latent_hits": latent_cache.hits, "latent_misses": latent_cache.misses}
    embeddings = None
    if not cfg.train_text_encoder:
        text_cache = TensorCache(cache_dir, "text")
        embeddings = _encode_captions(captions, text, model_hash, text_cache, cfg.cache_text, device)
        stats.update(text_hits=text_cache.hits, text_misses=text_cache.misses)
    return PreparedData(samples, captions, embeddings, stats)
