"""Background removers: a model-free flood fill and rembg (one session for a whole export).

A remover turns an RGB frame into an alpha matte in [0, 1]; the shared clean-up in
`game_export.alpha` turns that into clean RGBA. `make_remover` parses the `--remover` value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from game_export.alpha import soft_alpha
from game_export.components import border_connected
from game_export.errors import ExportError


class Remover(Protocol):
    name: str
    loads: int
    background_known: bool  # True when the RGB under removed pixels is a real background

    def matte(self, image: Image.Image) -> np.ndarray:
        """Alpha in [0, 1], shape (height, width), for an RGB image."""
        ...


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """The dominant border colour: the most common coarse colour bin, averaged within the bin."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int32)
    bins = (border >> 3) @ np.array([1024, 32, 1])
    values, counts = np.unique(bins, return_counts=True)
    chosen = border[bins == values[np.argmax(counts)]]
    return chosen.mean(axis=0).astype(np.float32)


@dataclass
class FloodFillRemover:
    """Remove the border-connected region close to the border colour.

    Made for the flat backgrounds SD characters are usually generated on ("simple background").
    `tolerance` is the RGB distance (0-441) still counted as background.
    """

    tolerance: float = 32.0
    name: str = "flood"
    loads: int = 0
    background_known: bool = True

    def matte(self, image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
        bg = background_colour(rgb)
        distance = np.sqrt(((rgb - bg) ** 2).sum(axis=2))
        background = border_connected(distance <= self.tolerance)
        return soft_alpha(rgb, ~background, np.broadcast_to(bg, rgb.shape))


@dataclass
class NoRemover:
    """Keep the image's own alpha (frames that are already cut out)."""

    name: str = "none"
    loads: int = 0
    background_known: bool = False

    def matte(self, image: Image.Image) -> np.ndarray:
        if "A" in image.getbands():
            return np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        return np.ones((image.height, image.width), dtype=np.float32)


def models_dir() -> Path:
    """Where rembg looks for model files: $U2NET_HOME, default ~/.u2net."""
    return Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net").expanduser()


def _missing_model(model: str, where: Path) -> ExportError:
    return ExportError(
        f"rembg model {model!r} not found at {where}: these machines are offline, so put the file "
        f"{model}.onnx into {models_dir()} (set $U2NET_HOME to use another folder), pass "
        "--remover rembg:/path/to/model.onnx, or use --remover flood")


@contextlib.contextmanager
def _models_home(folder: Path) -> Iterator[None]:
    # rembg accepts a custom model_path only inside its models directory, so point it there.
    old = os.environ.get("U2NET_HOME")
    os.environ["U2NET_HOME"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("U2NET_HOME", None)
        else:
            os.environ["U2NET_HOME"] = old


def _import_rembg() -> Any:
    try:
        import rembg  # noqa: PLC0415 - optional dependency, imported only when asked for
    except ImportError as exc:
        raise ExportError("rembg is not installed: pip install 'lorastrap[rembg]', "
                          "or use --remover flood") from exc
    return rembg


def rembg_session_factory(model: str, model_path: Path | None) -> Callable[[], Any]:
    """A factory that opens one rembg session for `model` (or a custom ONNX file)."""

    def open_session() -> Any:
        rembg = _import_rembg()
        try:
            if model_path is not None:
                with _models_home(model_path.parent):
                    return rembg.new_session("u2net_custom", model_path=str(model_path))
            return rembg.new_session(model)
        except (OSError, ConnectionError, ValueError) as exc:
            raise ExportError(f"could not load rembg model {model!r}: {exc}; "
                              "check the model file or use --remover flood") from exc

    return open_session


def rembg_mask(session: Any, image: Image.Image) -> np.ndarray:
    rembg = _import_rembg()
    mask = rembg.remove(image.convert("RGB"), session=session, only_mask=True)
    return np.asarray(mask.convert("L"), dtype=np.float32) / 255.0


@dataclass
class RembgRemover:
    """rembg matting with ONE session per export: the model is loaded on first use, then reused.

    `session_factory` and `mask_fn` are injectable so the reuse logic runs with any ONNX model.
    """

    session_factory: Callable[[], Any]
    mask_fn: Callable[[Any, Image.Image], np.ndarray] = rembg_mask
    name: str = "rembg"
    loads: int = 0
    background_known: bool = True
    _session: Any = field(default=None, repr=False)

    def matte(self, image: Image.Image) -> np.ndarray:
        if self._session is None:
            self._session = self.session_factory()
            self.loads += 1
        return np.clip(self.mask_fn(self._session, image), 0.0, 1.0).astype(np.float32)


def make_remover(spec: str | Remover | None) -> Remover:
    """Parse `--remover`: flood[:TOLERANCE] | none | rembg:MODEL | rembg:/path/model.onnx.

    A ready remover object is returned as it is (callers that build their own session).
    """
    if spec is not None and not isinstance(spec, str):
        return spec
    spec = (spec or "flood").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "flood":
        try:
            return FloodFillRemover(tolerance=float(arg) if arg else 32.0)
        except ValueError as exc:
            raise ExportError(f"--remover {spec}: tolerance must be a number, e.g. flood:32") from exc
    if kind == "none":
        return NoRemover()
    if kind == "rembg":
        return _rembg_remover(arg.strip() or "isnet-anime", spec)
    raise ExportError(f"unknown --remover {spec!r}; use flood, none, rembg:<model> "
                      "or rembg:/path/to/model.onnx")


def _rembg_remover(model: str, spec: str) -> RembgRemover:
    if model.endswith(".onnx") or os.sep in model or "/" in model:
        path = Path(model).expanduser().resolve()
        if not path.is_file():
            raise ExportError(f"--remover {spec}: model file {path} does not exist; "
                              "pass an existing .onnx file or use --remover flood")
        return RembgRemover(rembg_session_factory(path.stem, path), name=f"rembg:{path.name}")
    where = models_dir() / f"{model}.onnx"
    if not where.is_file():
        raise _missing_model(model, where)
    return RembgRemover(rembg_session_factory(model, None), name=f"rembg:{model}")
