"""Shared pytest fixtures. Each area adds its fixtures in its own marked section."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, PngImagePlugin

# ======================================================================================
# foundation: workspace, seed images, running the CLI, snapshots of a workspace's files
# ======================================================================================

def _draw_character(path: Path, size: tuple[int, int] = (128, 192), hue: int = 0,
                    note: str | None = None) -> Path:
    """A small drawn figure (head, ears, body) so that every crop has distinct content."""
    w, h = size
    im = Image.new("RGB", size, (250, 248, 240))
    d = ImageDraw.Draw(im)
    skin, hair = (255, 220, 190), ((200 + hue) % 256, (140 + 3 * hue) % 256, 40)
    d.polygon([(w * 0.3, h * 0.12), (w * 0.38, 0), (w * 0.45, h * 0.12)], fill=hair)  # ears
    d.polygon([(w * 0.55, h * 0.12), (w * 0.62, 0), (w * 0.7, h * 0.12)], fill=hair)
    d.ellipse((w * 0.28, h * 0.08, w * 0.72, h * 0.36), fill=skin, outline=hair, width=4)
    d.rectangle((w * 0.32, h * 0.36, w * 0.68, h * 0.8), fill=(60, 90, (180 + hue) % 256))
    d.rectangle((w * 0.36, h * 0.8, w * 0.46, h), fill=(40, 40, 40))
    d.rectangle((w * 0.54, h * 0.8, w * 0.64, h), fill=(40, 40, 40))
    info = None
    if note is not None:  # like a PNG from A1111: a text chunk, so the bytes differ from a re-encode
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", note)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG", pnginfo=info)
    return path


@pytest.fixture
def make_png(tmp_path: Path) -> Callable[..., Path]:
    """`make_png("a.png", size=(128, 192), hue=0, note=None)` draws a figure under tmp_path/inputs."""

    def make(name: str, size: tuple[int, int] = (128, 192), hue: int = 0, note: str | None = None) -> Path:
        return _draw_character(tmp_path / "inputs" / name, size, hue, note)

    return make


@pytest.fixture
def seed_image(make_png: Callable[..., Path]) -> Path:
    """One drawn 128×192 PNG that carries an A1111-style `parameters` text chunk."""
    return make_png("seed.png", note="1girl, fox ears, Steps: 20")


@pytest.fixture
def seed_images(make_png: Callable[..., Path]) -> list[Path]:
    """Four distinct drawn PNGs (for `--crop none`)."""
    return [make_png(f"pose{i}.png", hue=40 * i) for i in range(4)]


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lorastrap.workspace import init_workspace

    root = tmp_path_factory.mktemp("template") / "ws"
    init_workspace(root)  # migrations run once per session; each test copies the result
    return root


@pytest.fixture
def workspace(_workspace_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An initialised workspace (SQLite registry at head) in tmp_path/ws; cwd is set to it."""
    from lorastrap.workspace import load_workspace

    root = tmp_path / "ws"
    shutil.copytree(_workspace_template, root)
    monkeypatch.delenv("LORASTRAP_WORKSPACE", raising=False)
    monkeypatch.chdir(root)
    return load_workspace(root)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli_run(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `lorastrap.cli.main(argv)` (the console entry point: error handling, exit codes)."""
    from lorastrap.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`: folders as "dir", files as the sha256 of their bytes."""
    snap: dict[str, str] = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        snap[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, str]]:
    return tree_snapshot


@pytest.fixture
def schema_diff() -> Callable[..., list]:  # type: ignore[type-arg]
    """`schema_diff(engine)`: what alembic autogenerate would change to match the ORM ([] = agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from registry.models import Base

    def diff(engine) -> list:  # type: ignore[no-untyped-def, type-arg]
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)

    return diff


# ======================================================================================
# end of foundation section
# ======================================================================================


# ======================================================================================
# engine (models, training, generation): ONE tiny model per session
# ======================================================================================

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny SD 1.x model (random weights, seed 0), built once per session."""
    import torch

    from lorastrap.models.tiny import build_tiny_model

    # Tiny tensors gain nothing from threads, and on a shared 2-core box two threads per process
    # oversubscribe the CPU (measured 30× slower under load).
    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-sd15", "sd15", seed=0)


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL-architecture model (two text encoders), built once per session."""
    from lorastrap.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-sdxl", "sdxl", seed=0)


@dataclass(frozen=True)
class TinyTrainKit:
    """Shared by the training tests: a 4-image dataset (mixed aspect ratios) and a fast config."""

    trigger: str = "tnygrl"

    @property
    def prompts(self) -> list[str]:
        return [f"{self.trigger}, from side", f"{self.trigger}, from behind"]

    def make_items(self, root: Path) -> list:
        from lorastrap.training.loop import TrainItem

        folder = root / f"5_{self.trigger}"
        folder.mkdir(parents=True, exist_ok=True)
        specs = [((220, 40, 40), (64, 64)), ((40, 200, 60), (96, 64)), ((40, 60, 220), (64, 64)),
                 ((230, 200, 30), (64, 96))]
        items = []
        for i, (colour, size) in enumerate(specs):
            img = Image.new("RGB", size, (250, 250, 245))
            ImageDraw.Draw(img).ellipse((6, 6, size[0] - 6, size[1] - 6), fill=colour)
            img.save(folder / f"{i}.png")
            items.append(TrainItem(folder / f"{i}.png", f"{self.trigger}, 1girl, solo, fox ears, view {i}", 2))
        return items

    def config(self, **overrides):  # type: ignore[no-untyped-def]
        from lorastrap.training.config import TrainConfig

        base = dict(max_train_steps=6, batch_size=2, rank=4, alpha=2.0, learning_rate=5e-3,
                    lr_warmup_steps=0, trigger=self.trigger, sample_steps=2, caption_variants=3,
                    save_every_steps=100, train_text_encoder=False)  # UNet-only keeps the file checks exact
        return TrainConfig.from_preset("character", **{**base, **overrides})


@pytest.fixture(scope="session")
def train_kit() -> TinyTrainKit:
    return TinyTrainKit()


# ======================================================================================
# end of engine section
# ======================================================================================


# ======================================================================================
# watch & jobs: fast watcher settings, polling waits, the CLI as a subprocess
# ======================================================================================

FAST_WATCH = {
    "debounce_s": 0.3, "stable_interval_s": 0.1, "heartbeat_s": 0.1, "stale_after_s": 1.0,
    "poll_s": 0.1, "rescan_s": 30.0,
}


@pytest.fixture
def watch_ws(workspace):  # type: ignore[no-untyped-def]
    """`workspace` with [watch] settings fast enough for tests, written to its lorastrap.toml
    (so subprocesses see them too)."""
    from lorastrap.workspace import load_workspace

    toml = workspace.root / "lorastrap.toml"
    text = toml.read_text().replace("debounce_s = 3.0\n", "")
    lines = "".join(f"{k} = {v}\n" for k, v in FAST_WATCH.items())
    toml.write_text(text.replace("[watch]\n", "[watch]\n" + lines))
    ws = load_workspace(workspace.root)
    assert ws.config.watch.debounce_s == FAST_WATCH["debounce_s"]
    return ws


def wait_until(pred: Callable[[], object], timeout: float = 15.0, every: float = 0.02) -> object:
    """Poll `pred` until it returns something truthy (returned), or fail after `timeout` s."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s: {pred}")


@pytest.fixture
def poll() -> Callable[..., object]:
    return wait_until


@pytest.fixture
def lorastrap_argv() -> Callable[..., list[str]]:
    """`lorastrap_argv(ws_root, "worker", "--once")`: the CLI as a command line for subprocess."""
    import sys

    def argv(root: Path, *args: str) -> list[str]:
        return [sys.executable, "-c", "from lorastrap.cli import main; main()", "-w", str(root), *args]

    return argv


# ======================================================================================
# end of watch & jobs section
# ======================================================================================


# ======================================================================================
# sprite export engine checks: one small frame set shared by the Godot and PixiJS/Phaser tests
# ======================================================================================

@pytest.fixture(scope="session")
def engine_check_frames(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Three drawn frames (idle ×1, walk ×2) of different heights, as FrameSpecs."""
    from game_export.synthetic import animation_frames

    return animation_frames(tmp_path_factory.mktemp("engine_frames"), {"idle": 1, "walk": 2},
                            size=(64, 80), x=15, y=6, height=64)

# ======================================================================================
# end of sprite export engine checks section
# ======================================================================================


# ======================================================================================
# ui: a workspace with one character whose round-1 candidates wait for curation
# ======================================================================================

def small_method(root: Path, model: Path | str | None = None, *, candidates: int | None = None,
                 training: dict | None = None, adaptive: bool = False, check: int = 0) -> None:
    """Rewrite a workspace's lorastrap.toml for the small method of the tests: thresholds 4 → 6 → 8,
    and when given the base model, the candidates per round and `[training]` settings. Adaptive
    rounds and the final LoRA check are off unless asked for: a random tiny model passes no check,
    so its rounds would run to their cap (tests/method/test_adaptive_round.py and the demo cover them)."""
    from lorastrap.workspace import CONFIG_NAME

    cfg = Path(root) / CONFIG_NAME
    text = cfg.read_text().replace("thresholds = [4, 16, 40]", "thresholds = [4, 6, 8]")
    text = text.replace("adaptive = true", f"adaptive = {'true' if adaptive else 'false'}")
    text = text.replace("check_images_per_view = 0", f"check_images_per_view = {check}")
    if model is not None:
        text = text.replace('base_model = "tiny"', f'base_model = "{model}"')
    if candidates is not None:
        text = text.replace("candidates_per_round = 24", f"candidates_per_round = {candidates}")
    if training:
        text += "\n[training]\n" + "".join(f"{k} = {v}\n" for k, v in training.items())
    cfg.write_text(text)


UI_TRAINING = {"max_train_steps": 3, "resolution": 64, "sample_steps": 2}


def build_ui_workspace(root: Path, model: Path | str, candidates: int = 6):  # type: ignore[no-untyped-def]
    """Thresholds 4 → 6 → 8, round 1 trained and its candidates generated. `model` "lab": the
    shipped lab model and a lab-world seed (pictures worth a screenshot), else a model folder."""
    from lorastrap.characters import add_character
    from lorastrap.method.step import bootstrap_step
    from lorastrap.workspace import CONFIG_NAME, init_workspace, load_workspace

    ws, _ = init_workspace(root)
    small_method(ws.root, model, candidates=candidates, training=UI_TRAINING)
    if model == "lab":  # the lab world's views, as `lorastrap demo` sets them
        import json

        from lorastrap.lab.world import VIEWS

        cfg = ws.root / CONFIG_NAME
        cfg.write_text(cfg.read_text().replace(
            'views = ["front", "from side", "from behind", "from above", "from below",\n'
            '         "three-quarter view", "full body", "upper body", "portrait"]', f"views = {json.dumps(list(VIEWS))}"))
    ws = load_workspace(ws.root)
    if model == "lab":
        from lorastrap.demo import SEED_TAGS, draw_seed

        seeds, tags = draw_seed(root.parent / "seed-in")
        added = add_character(ws, "Kitsune", seeds, tags, crop="none", seed_tags=SEED_TAGS)
    else:
        seed = _draw_character(root.parent / "seed-in" / "seed.png")
        added = add_character(ws, "Kitsune", [seed], "1girl, solo, fox ears, fox tail, blonde hair")
    bootstrap_step(ws, added.slug, progress=False)
    return ws


@pytest.fixture(scope="module")
def ui_template(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test module; tests that change it take `ui_ws` (a copy).
    LORASTRAP_UI_MODEL=lab builds it on the lab model (for docs/ui.md's screenshots)."""
    import os

    root = tmp_path_factory.mktemp("ui-template") / "ws"
    build_ui_workspace(root, "lab" if os.environ.get("LORASTRAP_UI_MODEL") == "lab" else tiny_model_dir)
    return root


@pytest.fixture
def ui_ws(ui_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lorastrap.workspace import load_workspace

    root = tmp_path / "ws"
    shutil.copytree(ui_template, root, symlinks=True)
    return load_workspace(root)


# ======================================================================================
# end of ui section
# ======================================================================================


# ======================================================================================
# LoRA files: community-shaped LoRAs built by hand, single-file checkpoints of the tiny models
# ======================================================================================

# The tiny UNets' attention blocks (one layer per block): diffusers path → the original (sgm) path
# that sd-scripts names SDXL modules by — written out by hand, not computed by lorastrap.
TINY_ATTENTION_BLOCKS = {
    "down_blocks.0.attentions.0": "input_blocks.1.1", "down_blocks.1.attentions.0": "input_blocks.3.1",
    "mid_block.attentions.0": "middle_block.1",
    "up_blocks.0.attentions.0": "output_blocks.0.1", "up_blocks.0.attentions.1": "output_blocks.1.1",
    "up_blocks.1.attentions.0": "output_blocks.2.1", "up_blocks.1.attentions.1": "output_blocks.3.1",
}
_TE_MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")


def _weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from lorastrap.models.safetensors_io import safetensors_shapes

    shapes: dict[str, tuple[int, ...]] = {}
    for file in folder.glob("*.safetensors"):
        shapes.update(safetensors_shapes(file))
    return shapes


def community_lora(path: Path, model_dir: Path, arch: str = "sd15", *, seed: int = 0, rank: int = 4,
                   alpha: float = 2.0, scale: float = 0.3, tags: dict[str, int] | None = None,
                   images: int = 12) -> Path:
    """A LoRA shaped like the ones people download, NOT written by lorastrap: kohya sd-scripts key
    names typed out here (UNet attention projections, both text encoders' attention and MLP layers),
    fp16 tensors, alpha ≠ rank, and the ss_* metadata sd-scripts writes (tag frequencies included)."""
    import json

    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    unet = _weight_shapes(model_dir / "unet")
    tensors: dict[str, torch.Tensor] = {}

    def add(stem: str, shape: tuple[int, ...]) -> None:
        out_f, in_f = shape[0], shape[1]
        tensors[f"{stem}.lora_down.weight"] = (torch.randn(rank, in_f, generator=gen) / in_f ** 0.5).half()
        tensors[f"{stem}.lora_up.weight"] = (torch.randn(out_f, rank, generator=gen) * scale).half()
        tensors[f"{stem}.alpha"] = torch.tensor(alpha).half()

    for block, sgm in TINY_ATTENTION_BLOCKS.items():
        for attn in ("attn1", "attn2"):
            for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                name = f"{sgm if arch == 'sdxl' else block}.transformer_blocks.0.{attn}.{proj}"
                add("lora_unet_" + name.replace(".", "_"), unet[f"{block}.transformer_blocks.0.{attn}.{proj}.weight"])
    encoders = [("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2")] if arch == "sdxl" else [("lora_te_", "text_encoder")]
    for prefix, folder in encoders:
        shapes = {k.removeprefix("text_model."): v for k, v in _weight_shapes(model_dir / folder).items()}
        for layer in range(2):
            for module in _TE_MODULES:
                add(f"{prefix}text_model_encoder_layers_{layer}_{module.replace('.', '_')}",
                    shapes[f"encoder.layers.{layer}.{module}.weight"])
    tags = tags or {"1girl": images, "solo": images, "pixel art": images, "blue hair": images // 2}
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank), "ss_network_alpha": f"{alpha}",
            "ss_base_model_version": "sdxl_base_v1-0" if arch == "sdxl" else "sd_v1",
            "ss_tag_frequency": json.dumps({"10_pixel": tags}),
            "ss_dataset_dirs": json.dumps({"10_pixel": {"n_repeats": 10, "img_count": images}}),
            "ss_output_name": path.stem, "ss_text_encoder_lr": "5e-05", "ss_unet_lr": "0.0001"}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.fixture(scope="session")
def tiny_single_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny SD1.5 and SDXL models as single-file checkpoints in the original (ldm/sgm) layout,
    each with its local config folder beside it, built once per session."""
    from lorastrap.models.single_file import build_tiny_single_file

    root = tmp_path_factory.mktemp("single-file")
    return {arch: build_tiny_single_file(root / f"tiny-{arch}.safetensors", arch) for arch in ("sd15", "sdxl")}


# ======================================================================================
# end of LoRA files section
# ======================================================================================
