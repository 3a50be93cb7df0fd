"""The built-in tiny model: the real SD 1.x / SDXL architectures with tiny random weights.

Built offline and deterministically from a seed (same seed, same bytes), saved with
`save_pretrained` so it loads like any diffusers model. It is the default base model of a new
workspace and of the tests: everything (training, kohya keys, adapters, generation) runs for real,
in seconds, on a CPU. Its native resolution is 64 px (an 8×8 latent).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from lorastrap.kernel.atomic import replaced_dir

TINY_RESOLUTION = 64
ARCHES = ("sd15", "sdxl")
MARKER = "lorastrap_tiny.json"

# Words the tiny tokenizer keeps as single tokens: the views and common character tags the
# bootstrap method puts in prompts. Everything else still tokenizes (byte-level fallback).
DEFAULT_WORDS = (
    "1girl", "1boy", "solo", "from side", "from behind", "from above", "from below", "front view",
    "three-quarter view", "full body", "upper body", "portrait", "standing", "sitting", "smile",
    "simple background", "white background", "hair", "eyes", "ears", "tail", "dress", "blonde",
    "black", "white", "red", "blue", "green", "yellow", "pink", "purple", "brown", "silver", "fox",
    "cat", "wolf", "style", "character", "lowres", "bad anatomy", "blurry", "worst quality",
)


def _scheduler_config(prediction_type: str = "epsilon") -> dict:
    return dict(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type,
    )


def _vae(seed: int):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    # Four blocks = three downsamplings: a 64 px image becomes an 8×8 latent, like SD's factor 8.
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=TINY_RESOLUTION,
    )


# SDXL's second encoder is wider than its first (1280 vs 768); so is the tiny one's (48 vs 32), which
# is also how diffusers' single-file loader tells the two apart in a checkpoint.
TEXT_WIDTH, TEXT2_WIDTH = 32, 48


def _text_encoder(seed: int, tokenizer, *, with_projection: bool = False):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    width = TEXT2_WIDTH if with_projection else TEXT_WIDTH
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length, projection_dim=width,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_act="quick_gelu",
    )
    torch.manual_seed(seed)
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config).eval()


def _unet(seed: int, arch: str):
    import torch
    from diffusers import UNet2DConditionModel

    common = dict(
        sample_size=TINY_RESOLUTION // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    if arch == "sdxl":
        # SDXL conditions on both encoders' hidden states (32 + 48) and on the pooled embedding
        # of the second plus six size/crop numbers, each embedded in 8 dims: 6 * 8 + 48 = 96.
        common.update(
            cross_attention_dim=TEXT_WIDTH + TEXT2_WIDTH, use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + TEXT2_WIDTH,
        )
    else:
        common.update(cross_attention_dim=TEXT_WIDTH)
    torch.manual_seed(seed)
    return UNet2DConditionModel(**common)


def build_pipeline(arch: str = "sd15", seed: int = 0, tokenizer_dir: Path | None = None):
    """The tiny pipeline in memory (random weights from `seed`)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    from lorastrap.models.device import quiet_diffusers
    from lorastrap.models.tokenizer import write_offline_clip_tokenizer

    quiet_diffusers()
    if arch not in ARCHES:
        raise ValueError(f"unknown tiny arch {arch!r}; choose one of {', '.join(ARCHES)}")
    tok_dir = Path(tokenizer_dir or tempfile.mkdtemp(prefix="lorastrap-tok-"))
    tokenizer = write_offline_clip_tokenizer(tok_dir, DEFAULT_WORDS)
    scheduler = DDIMScheduler(**_scheduler_config())
    if arch == "sdxl":
        return StableDiffusionXLPipeline(
            vae=_vae(seed + 1), text_encoder=_text_encoder(seed + 2, tokenizer),
            text_encoder_2=_text_encoder(seed + 3, tokenizer, with_projection=True),
            tokenizer=tokenizer, tokenizer_2=tokenizer, unet=_unet(seed + 4, arch),
            scheduler=scheduler, force_zeros_for_empty_prompt=True, add_watermarker=False,
        )
    return StableDiffusionPipeline(
        vae=_vae(seed + 1), text_encoder=_text_encoder(seed + 2, tokenizer), tokenizer=tokenizer,
        unet=_unet(seed + 4, arch), scheduler=scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )


def build_tiny_model(out_dir: Path, arch: str = "sd15", seed: int = 0) -> Path:
    """Build the tiny `arch` model from `seed` into `out_dir` (a diffusers directory); return it.

    Built in a temporary sibling and moved into place, so an interrupted build leaves nothing.
    An existing `out_dir` is replaced.
    """
    out_dir = Path(out_dir)
    with replaced_dir(out_dir, marker="model_index.json") as stage:
        pipe = build_pipeline(arch, seed, tokenizer_dir=stage / "_tok")
        shutil.rmtree(stage / "_tok")
        pipe.save_pretrained(str(stage), safe_serialization=True)
        (stage / MARKER).write_text(json.dumps({"arch": arch, "seed": seed, "resolution": TINY_RESOLUTION}))
    return out_dir


def ensure_tiny_model(out_dir: Path, arch: str = "sd15", seed: int = 0) -> Path:
    """Return `out_dir` holding the tiny model, building it only if it is not there yet."""
    marker = Path(out_dir) / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("arch") == arch and info.get("seed") == seed:
            return Path(out_dir)
    return build_tiny_model(out_dir, arch, seed)
