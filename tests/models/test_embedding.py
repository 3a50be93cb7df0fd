"""Image embedders: the model-free fallback, the local-CLIP path and the cosine helpers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lorastrap.kernel.errors import UserError
from lorastrap.models.embedding import (
    CLIP_ENV,
    ClipEmbedder,
    ColorStructureEmbedder,
    ImageEmbedder,
    cosine_similarity,
    default_embedder,
    paired_similarity,
    rgb_to_lab,
)


def _figure(hair=(240, 200, 40), dress=(200, 30, 30), shift=0, size=64) -> Image.Image:
    image = Image.new("RGB", (size, size), (235, 235, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20 + shift, 8, 44 + shift, 32), fill=(250, 220, 190))  # face
    draw.pieslice((16 + shift, 2, 48 + shift, 30), 180, 360, fill=hair)  # hair
    draw.polygon([(18 + shift, 2), (24 + shift, 14), (14 + shift, 14)], fill=hair)  # fox ear
    draw.rectangle((22 + shift, 32, 42 + shift, 60), fill=dress)
    return image


def test_lab_conversion_matches_reference_values():
    lab = rgb_to_lab(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.3)
    assert lab[1] == pytest.approx([53.24, 80.09, 67.20], abs=0.5)
    assert lab[2] == pytest.approx([0.0, 0.0, 0.0], abs=0.1)


def test_fallback_embedder_is_weak_and_ranks_sensibly():
    embedder = ColorStructureEmbedder()
    assert isinstance(embedder, ImageEmbedder) and embedder.weak and "weak" in embedder.name
    base = _figure()
    near = _figure(shift=1)
    recoloured = _figure(hair=(40, 80, 220), dress=(30, 160, 60))
    other = Image.new("RGB", (64, 64), (20, 20, 20))
    rows = embedder.embed([base, base.copy(), near, recoloured, other])
    assert rows.shape[0] == 5 and np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    sims = cosine_similarity(rows[:1], rows)[0]
    assert sims[1] == pytest.approx(1.0, abs=1e-6)
    assert sims[1] > sims[2] > sims[3] > sims[4]
    # Size and transparency do not matter; a transparent background reads as white.
    big = base.resize((256, 256), Image.Resampling.NEAREST)
    assert float(cosine_similarity(embedder.embed([big])[0], rows[0])) > 0.95


def test_cosine_helpers():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [1.0, 1.0]])
    assert cosine_similarity(a, b).shape == (2, 2)
    assert float(cosine_similarity(a[0], b[0])) == pytest.approx(1.0)
    assert paired_similarity(a, b) == pytest.approx([1.0, 2 ** -0.5])
    assert cosine_similarity(np.zeros(2), a[0]) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """A random-weight CLIP saved locally: exercises the real loading and embedding code offline."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tmp_path_factory.mktemp("clip")
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 300, "max_position_embeddings": 16},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_clip_embedder_from_local_folder(tiny_clip_dir, monkeypatch):
    embedder = ClipEmbedder(tiny_clip_dir)
    assert not embedder.weak
    rows = embedder.embed([_figure(), _figure(), _figure(hair=(0, 0, 255))])
    assert rows.shape == (3, 8)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert np.allclose(rows[0], rows[1], atol=1e-6)
    monkeypatch.setenv(CLIP_ENV, str(tiny_clip_dir))
    assert isinstance(default_embedder(), ClipEmbedder)
    monkeypatch.delenv(CLIP_ENV)
    assert isinstance(default_embedder(), ColorStructureEmbedder)


def test_clip_embedder_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(UserError, match="not a CLIP model folder"):
        ClipEmbedder(tmp_path)
