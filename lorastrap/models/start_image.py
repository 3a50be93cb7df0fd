"""Starting a generation from an image instead of pure noise (img2img, "SDEdit"): the image is
encoded, noised to `strength` of the schedule and denoised under the prompt.

The method starts a round's candidates from a seed image blurred down to its colour layout (hair
colour above, dress colour below, no outlines): the colour binding is decided at the highest noise
levels, where a text encoder that reads "green hair, purple dress" often draws the colours swapped
or both the same; a faint colour layout tips those levels the right way while the pose, the view
and every detail are still drawn anew. Measured on the lab's round-1 LoRAs: right candidates 0.60
→ see docs/fidelity.md, "Starting from the seed's colours".
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageFilter

# Gaussian blur radius as a fraction of the image's side: 1/16 leaves colour patches the size of a
# head or a skirt and no edges a pose could be copied from (the lab's 64 px: radius 4; radius 8
# was no better, the sharp seed pulled the views back to its front pose: docs/fidelity.md).
BLUR_FRACTION = 1 / 16


@dataclass(frozen=True)
class StartImage:
    """A generation's start: `image` (a seed image: its colour layout is what is used), noised to
    `strength` ∈ (0, 1) of the schedule, and where it came from (sha256 of the source)."""
    image: Image.Image
    strength: float
    source: str = ""
    blur: float = BLUR_FRACTION

    def record(self) -> dict[str, object]:
        return {"source_sha256": self.source, "strength": self.strength, "blur": self.blur}


def colour_layout(image: Image.Image, size: tuple[int, int], blur: float = BLUR_FRACTION) -> Image.Image:
    """`image` on white (transparent parts are background), stretched to `size`, blurred to its
    colour layout (Gaussian radius `blur` × the shorter side)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    rgb = canvas.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return rgb.filter(ImageFilter.GaussianBlur(max(1.0, blur * min(size))))


def image_to_image_pipeline(pipe):  # type: ignore[no-untyped-def]
    """The img2img pipeline over the same components (UNet, LoRA adapters, scheduler): no copy."""
    from diffusers import AutoPipelineForImage2Image

    i2i = AutoPipelineForImage2Image.from_pipe(pipe)
    i2i.set_progress_bar_config(disable=True)
    return i2i
