"""Device and dtype choice, quiet library loading, and turning out-of-memory into a UserError with a fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from lorastrap.kernel.errors import UserError


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def inference_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def _is_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in str(exc).lower() or isinstance(exc, MemoryError))


@contextlib.contextmanager
def oom_as_user_error(what: str, fix: str) -> Iterator[None]:
    """Re-raise an out-of-memory error as a one-line UserError naming the fix."""
    try:
        yield
    except Exception as exc:
        if not _is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise UserError(f"out of memory while {what}; {fix}") from exc


def quiet_diffusers() -> None:
    """Loading bars from diffusers/transformers are noise inside our own progress output."""
    from diffusers.utils import logging as dlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    try:
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
