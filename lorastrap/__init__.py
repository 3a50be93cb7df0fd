"""lorastrap: bootstrap a character LoRA from one image, track it, export it to game engines."""

import os as _os

# transformers warns at import time about optional image backends lorastrap never uses; the CLI's
# own progress output is what users should see. A user's explicit setting wins.
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

__version__ = "0.1.0"
