"""The lab model's architecture: the same diffusers/transformers classes as any SD 1.x base model,
sized for the lab world (64 px images, 16×16×4 latents, ~8.9 M parameters, ~18 MB in fp16).

Imports only torch/diffusers/transformers (and the offline tokenizer), so `pretrain.py` runs on a
bare GPU machine that has no database stack.
"""

from __future__ import annotations

from pathlib import Path

from lorastrap.lab.world import DRESS, EARS, HAIR, LEADING_TAGS, NO_TAG, SIZE, STYLES, TAIL, VIEWS

LATENT = SIZE // 4  # 3 VAE blocks = 2 downsamplings
TEXT_WIDTH = 128
MAX_TOKENS = 77  # SD's prompt length: other tools pad to it
MARKER = "lorastrap_lab.json"  # training record written next to model_index.json

# Every tag word of the world is a single token; anything else (trigger words) still tokenizes.
LAB_WORDS = tuple(dict.fromkeys(
    w for tag in (*LEADING_TAGS, *HAIR, *DRESS, *EARS, *TAIL, *VIEWS, *STYLES)
    if tag not in NO_TAG for w in tag.split()
))


def scheduler_config() -> dict:
    """SD 1.x's noise schedule (epsilon prediction); DDIM with steps_offset=1 for sampling."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                steps_offset=1, prediction_type="epsilon")


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=16,
        block_out_channels=(64, 96, 96), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, sample_size=SIZE,
    )


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128, 128), norm_num_groups=32, attention_head_dim=8,
        cross_attention_dim=TEXT_WIDTH,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )


def build_tokenizer(directory: Path):
    from lorastrap.models.tokenizer import write_offline_clip_tokenizer

    return write_offline_clip_tokenizer(Path(directory), LAB_WORDS, model_max_length=MAX_TOKENS)


def build_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        projection_dim=TEXT_WIDTH, hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def assemble_pipeline(vae, text_encoder, tokenizer, unet):
    """A StableDiffusionPipeline of the given parts (DDIM sampler, no safety checker)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(**scheduler_config()), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )


def load_lab_pipeline(directory: Path, device: str = "cpu", dtype=None):
    """Load a saved lab model offline (float32 on CPU unless `dtype` says otherwise)."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(directory), local_files_only=True, use_safetensors=True,
        torch_dtype=dtype or torch.float32, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
