"""lorastrap: bootstrap a character LoRA from one image, track it, export it to game engines."""

__version__ = "0.1.0"
