"""Run-time plumbing of a training run: the accelerator, the log file, stop signals."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from pathlib import Path

import torch

from lorastrap.kernel.errors import UserError


class LocalAccelerator:
    """The part of `accelerate.Accelerator` the loop uses, for one device, when accelerate is
    not installed (a bare GPU box). bf16/no only: fp16 needs accelerate's loss scaling."""

    num_processes = 1
    process_index = 0
    is_main_process = True

    def __init__(self, mixed_precision: str) -> None:
        if mixed_precision == "fp16":
            raise UserError("mixed_precision fp16 needs the accelerate package; install it or use bf16")
        cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        self.dtype = torch.bfloat16 if mixed_precision == "bf16" else None

    def prepare(self, *objects):  # type: ignore[no-untyped-def]
        return objects if len(objects) > 1 else objects[0]

    def autocast(self):  # type: ignore[no-untyped-def]
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def no_sync(self, module):  # type: ignore[no-untyped-def]
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, params, max_norm: float):  # type: ignore[no-untyped-def]
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def wait_for_everyone(self) -> None:
        pass


def make_accelerator(mixed_precision: str):  # type: ignore[no-untyped-def]
    """An `accelerate.Accelerator` (so `accelerate launch` spreads the run over several GPUs);
    without accelerate installed, a single-device stand-in."""
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UserError("mixed_precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    try:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
    except ImportError:
        return LocalAccelerator(mixed_precision)
    # A long-lived process (the watcher) may train runs with different precisions: forget the
    # previous run's settings but keep the distributed state `accelerate launch` set up.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision)


def weight_dtype_for(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


class RunLog:
    """A plain-text log per run (appended, flushed per line, so `tail -f` works)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        stamp = dt.datetime.now().isoformat(timespec="seconds")
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")


class StopSignals:
    """Turn SIGINT/SIGTERM into a stop request checked between steps (a step is never cut in
    half); a second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
