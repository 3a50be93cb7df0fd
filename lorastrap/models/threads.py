"""CPU thread count for small models.

The built-in tiny and lab models gain nothing from a second thread, and on a busy 2-core machine
two threads per process were measured 7-30× slower (oversubscription). LORASTRAP_THREADS overrides.
"""

from __future__ import annotations

import os


def use_small_model_threads(default: int = 1) -> int:
    import torch

    threads = int(os.environ.get("LORASTRAP_THREADS", str(default)))
    torch.set_num_threads(threads)
    return threads
