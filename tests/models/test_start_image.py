"""The colour layout a candidate starts from (models/start_image.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lorastrap.models.start_image import colour_layout


def test_the_colour_layout_puts_transparency_on_white_and_keeps_only_colour_patches() -> None:
    # a transparent crop (a cut-out seed) with a red top half and a 1-px dark outline down the middle
    crop = Image.new("RGBA", (128, 256), (0, 0, 0, 0))
    crop.paste((220, 30, 30, 255), (0, 0, 128, 128))
    crop.paste((10, 10, 10, 255), (64, 0, 65, 256))
    layout = np.asarray(colour_layout(crop, (64, 64))).astype(int)
    assert layout.shape == (64, 64, 3)
    assert (layout[56:, :8] > 245).all()  # transparent → white, not black
    top = layout[4:24, 4:20]
    assert top[..., 0].mean() > 180 and top[..., 1].mean() < 90  # the red patch stays red
    assert layout[40:, 30:34].min() > 90  # the outline is blurred away, not drawn into the start
