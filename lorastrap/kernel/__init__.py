"""The kernel: what every layer may import (errors, atomic writes, the file journal, progress,
typed settings, image decoding, the memory budget). It imports nothing else of the project."""
