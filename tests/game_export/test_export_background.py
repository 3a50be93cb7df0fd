"""Background removal: flood fill on flat backgrounds, alpha clean-up, rembg session reuse."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from game_export import ExportRequest, FrameSpec, export_sprites
from game_export.alpha import AlphaCleanup, cleanup, dilate
from game_export.background import FloodFillRemover, RembgRemover, make_remover
from game_export.components import label
from game_export.errors import ExportError
from game_export.synthetic import Figure, draw_frame, save_frame

BACKGROUNDS = [(245, 245, 245), (20, 160, 60), (250, 220, 230)]


def _cut(image: Image.Image, remover=None, settings: AlphaCleanup | None = None) -> np.ndarray:
    remover = remover or FloodFillRemover()
    alpha = remover.matte(image.convert("RGB"))
    return cleanup(np.asarray(image.convert("RGB")), alpha, settings or AlphaCleanup(), True)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_flood_keeps_figure_and_clears_background(background):
    image, truth = draw_frame((160, 200), Figure(x=50, y=20, height=160, colour=(90, 70, 200)),
                              background=background)
    rgba = _cut(image)
    kept = rgba[..., 3] > 127
    assert _iou(kept, truth) >= 0.95
    far = ~dilate(truth, 2)  # background pixels at least 2 px from the figure
    assert (rgba[..., 3][far] == 0).all()
    assert (rgba[..., 3][truth] > 0).mean() > 0.99


def test_speck_is_removed_and_edges_have_no_background_halo():
    bg = (245, 245, 245)
    image, truth = draw_frame((120, 160), Figure(x=40, y=10, height=140, colour=(40, 40, 160)),
                              background=bg, speck=(5, 150))
    rgba = _cut(image)
    assert rgba[150, 5, 3] == 0
    edge = (rgba[..., 3] > 0) & (rgba[..., 3] < 255)
    assert edge.sum() > 20  # anti-aliased edge was kept soft
    # De-fringed: the edge colours are the figure's, not a blend with the near-white background.
    near_bg = np.abs(rgba[edge][:, :3].astype(int) - np.array(bg)).sum(axis=1) < 120
    assert near_bg.mean() < 0.05
    without = _cut(image, settings=AlphaCleanup(defringe=False))
    halo = np.abs(without[edge][:, :3].astype(int) - np.array(bg)).sum(axis=1) < 120
    assert halo.mean() > near_bg.mean()  # the check above can fail: raw edges do carry the halo


def test_threshold_drops_faint_haze():
    rgb = np.full((20, 20, 3), 100, dtype=np.uint8)
    alpha = np.zeros((20, 20), dtype=np.float32)
    alpha[5:15, 5:15] = 1.0
    alpha[0, 0] = 0.03  # 8/255: haze
    out = cleanup(rgb, alpha, AlphaCleanup(threshold=16, min_island=0), background_known=False)
    assert out[0, 0, 3] == 0 and out[10, 10, 3] == 255


def test_labelling_matches_a_brute_force_flood():
    rng = np.random.default_rng(3)
    mask = rng.random((40, 50)) > 0.45
    for eight in (False, True):
        labels, sizes = label(mask, eight=eight)
        seen = np.zeros_like(mask)
        count = 0
        for y, x in zip(*np.nonzero(mask)):
            if seen[y, x]:
                continue
            count += 1
            stack, members = [(y, x)], []
            seen[y, x] = True
            while stack:
                cy, cx = stack.pop()
                members.append(labels[cy, cx])
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if (dy or dx) and (eight or not (dy and dx)):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < 40 and 0 <= nx < 50 and mask[ny, nx] and not seen[ny, nx]:
                                seen[ny, nx] = True
                                stack.append((ny, nx))
            assert len(set(members)) == 1 and sizes[members[0]] == len(members)
        assert count == len(sizes) - 1


def test_remover_specs_parse_and_fail_with_one_line_errors(tmp_path, monkeypatch):
    assert make_remover("flood:12").tolerance == 12
    assert make_remover(None).name == "flood"
    assert make_remover("none").name == "none"
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "models"))
    with pytest.raises(ExportError) as err:
        make_remover("rembg:isnet-anime")
    message = str(err.value)
    assert "isnet-anime.onnx" in message and str(tmp_path / "models") in message
    assert "--remover flood" in message and "\n" not in message
    with pytest.raises(ExportError, match="does not exist"):
        make_remover(f"rembg:{tmp_path / 'nope.onnx'}")
    with pytest.raises(ExportError, match="unknown --remover"):
        make_remover("magic")
    with pytest.raises(ExportError, match="tolerance"):
        make_remover("flood:abc")


@pytest.mark.skipif(importlib.util.find_spec("rembg") is not None, reason="rembg is installed here")
def test_rembg_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    (tmp_path / "u2net.onnx").write_bytes(b"not used")
    remover = make_remover("rembg:u2net")  # lazy: nothing imported yet
    with pytest.raises(ExportError, match="pip install"):
        remover.matte(Image.new("RGB", (8, 8)))


def _tiny_segmentation_model(path) -> None:
    """A real 1-layer ONNX 'segmenter': dark pixels are foreground (sigmoid(30*(0.7-mean)))."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    conv = torch.nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(-10.0)
        conv.bias.fill_(21.0)
    model = torch.nn.Sequential(conv, torch.nn.Sigmoid()).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), str(path), input_names=["input"],
                      output_names=["mask"], dynamic_axes={"input": {2: "h", 3: "w"}},
                      dynamo=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter
def test_one_model_load_per_export_with_a_real_onnx_session(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model_path = tmp_path / "seg.onnx"
    _tiny_segmentation_model(model_path)

    def open_session():
        return ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])

    def run(session, image):
        x = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        return session.run(None, {"input": x})[0][0, 0]

    frames = []
    for i in range(5):
        image, _ = draw_frame((64, 96), Figure(x=18 + i, y=8, height=80, colour=(150, 40, 40)))
        frames.append(FrameSpec(save_frame(image, tmp_path / f"f{i}.png"), "idle"))
    remover = RembgRemover(open_session, run, name="rembg:seg.onnx")
    result = export_sprites(ExportRequest(frames=frames, character="hero", out_dir=tmp_path / "out",
                                          engines=frozenset({"json"}), remover=remover))
    assert result.remover_loads == 1 and remover.loads == 1
    assert len(result.sheet.frames) == 5
    # The model's matte was really used: the figure was cut out to about its own width.
    assert 25 <= result.sheet.frames[0].source_w <= 40


def test_real_rembg_model_if_present(tmp_path):
    pytest.importorskip("rembg", reason="rembg not installed (offline machine)")
    from game_export.background import models_dir

    if not (models_dir() / "u2netp.onnx").is_file():
        pytest.skip(f"no rembg model u2netp.onnx in {models_dir()} (models cannot be downloaded here)")
    remover = make_remover("rembg:u2netp")
    image, truth = draw_frame((128, 160), Figure(x=40, y=10, height=140))
    for _ in range(3):
        remover.matte(image)
    assert remover.loads == 1
