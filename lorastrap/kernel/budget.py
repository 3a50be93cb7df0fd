"""How much memory a job may still allocate, so sizes are refused before they are allocated.

`export sprites --size 100000` once grew to 23 GB and woke the kernel's OOM killer; the whole
machine suffered. Callers estimate what they will hold (pixels × channels × frames) and compare it
with `available_memory()` first.
"""

from __future__ import annotations

import resource
from pathlib import Path

# Leave a share for the interpreter, libraries and what the estimate does not count.
USABLE_SHARE = 0.8


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left() -> int | None:
    """Room left under `ulimit -v` (RLIMIT_AS), if one is set."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return soft


def available_memory() -> int | None:
    """Bytes this process can still allocate (the tighter of free RAM and `ulimit -v`); None
    when neither can be read (then nothing is refused)."""
    known = [v for v in (_meminfo_available(), _address_space_left()) if v is not None]
    return min(known) if known else None


def over_budget(needed_bytes: int) -> int | None:
    """The usable bytes when `needed_bytes` does not fit in them, else None."""
    available = available_memory()
    if available is None:
        return None
    usable = int(available * USABLE_SHARE)
    return usable if needed_bytes > usable else None


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
