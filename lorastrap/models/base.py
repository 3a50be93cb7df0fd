"""Base models: find one (diffusers folder, hub id, single-file checkpoint, built-in tiny),
identify its architecture and hash, and load it as a pipeline.

Every failure a user can fix (missing folder, truncated file, offline hub id) becomes a UserError
that names the file and the fix.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lorastrap.kernel.errors import UserError
from lorastrap.models.hashing import model_hash
from lorastrap.models.safetensors_io import check_safetensors, safetensors_keys

Kind = Literal["diffusers", "hub", "single_file"]
Arch = Literal["sd15", "sd2", "sdxl"]
TINY_SPEC = re.compile(r"^tiny(?::(sd15|sdxl))?(?:@(\d+))?$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class BaseModelRef:
    path_or_id: str
    kind: Kind
    arch: Arch
    sha256: str
    local_path: Path | None = None      # where the files are (diffusers dir or the checkpoint)
    config_dir: Path | None = None      # single file only: the diffusers config folder

    @property
    def short_hash(self) -> str:
        """The 10-digit form A1111 prints as "Model hash"."""
        return self.sha256[:10]

    @property
    def name(self) -> str:
        return Path(self.path_or_id).name if self.kind != "hub" else self.path_or_id.split("/")[-1]


def default_models_dir() -> Path:
    """Where built-in models are kept when no workspace says otherwise."""
    env = os.environ.get("LORASTRAP_MODELS")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lorastrap" / "models"


def _arch_of_diffusers_dir(path: Path) -> Arch:
    index = path / "model_index.json"
    try:
        cls = json.loads(index.read_text()).get("_class_name", "")
    except (OSError, ValueError) as exc:
        raise UserError(f"{index} is missing or not valid JSON; point to a complete diffusers "
                        "model folder (one saved with save_pretrained)") from exc
    if "XL" in cls or (path / "text_encoder_2").is_dir():
        return "sdxl"
    try:  # SD 2.x: the same pipeline class as 1.x, told apart by its 1024-wide (OpenCLIP) text features
        width = json.loads((path / "unet" / "config.json").read_text()).get("cross_attention_dim")
    except (OSError, ValueError):
        width = None
    return "sd2" if width == 1024 else "sd15"


def _arch_of_checkpoint(path: Path) -> Arch:
    keys = safetensors_keys(path)
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"  # OpenCLIP text encoder
    if any(k.startswith(("model.diffusion_model.", "cond_stage_model.")) for k in keys):
        return "sd15"
    raise UserError(f"{path} holds no Stable Diffusion UNet/text-encoder weights; "
                    "pass an SD 1.x, 2.x or SDXL checkpoint")


def _find_config_dir(path: Path, config_dir: Path | None) -> Path:
    candidates = [config_dir] if config_dir else [path.with_suffix(""), path.parent / f"{path.stem}.config"]
    for cand in candidates:
        if cand and (Path(cand) / "model_index.json").is_file():
            return Path(cand)
    raise UserError(f"{path} is a single-file checkpoint and needs a local diffusers config folder; "
                    f"put one at {path.with_suffix('')}/ (model_index.json + component configs) "
                    "or pass --model-config DIR")


def _lab_model_dir() -> Path:
    """The small pretrained lab model shipped inside the package (lorastrap/lab/weights/…)."""
    weights = Path(__file__).resolve().parent.parent / "lab" / "weights"
    found = sorted(p.parent for p in weights.glob("**/model_index.json")) if weights.is_dir() else []
    if not found:
        raise UserError(f"the lab model is not in this install ({weights}); build it with "
                        "`lorastrap lab pretrain --out DIR` and set base_model to DIR")
    return found[0]


def _hub_snapshot(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with diffusers
        raise UserError(f"cannot fetch {repo_id}: huggingface_hub is not installed") from exc
    patterns = ["*.json", "*.txt", "*.safetensors"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache: try the network below
        pass
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - any hub/network error means the same to the user
        raise UserError(f"cannot download base model {repo_id!r} from the Hugging Face hub "
                        f"({type(exc).__name__}); go online once, or pass a local diffusers folder "
                        "or .safetensors file instead") from exc


def resolve_base_model(spec: str | Path, search_root: Path | None = None,
                       config_dir: Path | None = None) -> BaseModelRef:
    """Turn what the user wrote (`tiny`, `tiny:sdxl`, a folder, a file, a hub id) into a reference.

    Relative paths are looked up under `search_root` (the workspace) first, then the cwd. Built-in
    tiny models are built on first use under `search_root/.lorastrap/models` (or the user cache).
    """
    text = str(spec).strip()
    tiny = TINY_SPEC.match(text)
    if tiny:
        from lorastrap.models.tiny import ensure_tiny_model

        arch, seed = tiny.group(1) or "sd15", int(tiny.group(2) or 0)
        root = (Path(search_root) / ".lorastrap" / "models") if search_root else default_models_dir()
        path = ensure_tiny_model(root / f"tiny-{arch}-{seed}", arch, seed)
        return BaseModelRef(text, "diffusers", arch, model_hash(path), path)

    if text == "lab":
        path = _lab_model_dir()
        return BaseModelRef(text, "diffusers", _arch_of_diffusers_dir(path), model_hash(path), path)

    candidates = [Path(text).expanduser()]
    if search_root and not Path(text).is_absolute():
        candidates.insert(0, Path(search_root) / text)
    path = next((c for c in candidates if c.exists()), None)
    if path is not None:
        path = path.resolve()
        if path.is_dir():
            arch = _arch_of_diffusers_dir(path)
            return BaseModelRef(str(path), "diffusers", arch, model_hash(path), path)
        if path.suffix.lower() != ".safetensors":
            raise UserError(f"{path} is not a .safetensors checkpoint or diffusers folder; "
                            "convert .ckpt files to .safetensors (pickles are never loaded)")
        check_safetensors(path)
        arch = _arch_of_checkpoint(path)
        cfg = _find_config_dir(path, config_dir)
        return BaseModelRef(str(path), "single_file", arch, model_hash(path), path, cfg)
    if _HUB_ID.match(text) and not text.startswith((".", "/")):
        snapshot = _hub_snapshot(text)
        return BaseModelRef(text, "hub", _arch_of_diffusers_dir(snapshot), model_hash(snapshot), snapshot)
    raise UserError(f"base model {text!r} not found: give a diffusers folder, a .safetensors file, "
                    "a hub id (org/name), or 'tiny' for the built-in test model")


def as_ref(base: "BaseModelRef | Path | str", search_root: Path | None = None) -> BaseModelRef:
    return base if isinstance(base, BaseModelRef) else resolve_base_model(base, search_root)


def load_pipeline(ref: BaseModelRef | Path | str, device=None, dtype=None):
    """Load the base model as a diffusers pipeline (offline; safetensors only)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    ref = as_ref(ref)
    from lorastrap.models.device import quiet_diffusers

    quiet_diffusers()
    cls = StableDiffusionXLPipeline if ref.arch == "sdxl" else StableDiffusionPipeline
    extra = {} if ref.arch == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    kwargs = dict(local_files_only=True, torch_dtype=dtype, **extra)
    try:
        with warnings.catch_warnings():
            # diffusers ≥ 0.36 renamed torch_dtype → dtype; the old name works on all we support
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            if ref.kind == "single_file":
                pipe = cls.from_single_file(str(ref.local_path), config=str(ref.config_dir), **kwargs)
            else:
                pipe = cls.from_pretrained(str(ref.local_path), use_safetensors=True, **kwargs)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types for a broken folder
        raise UserError(f"cannot load base model {ref.local_path}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''}; rebuild it "
                        "(lorastrap model tiny) or re-download it") from exc
    pipe.set_progress_bar_config(disable=True)
    if device is not None:
        pipe.to(device)
    return pipe
