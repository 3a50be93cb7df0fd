"""THE LoRA file: names, reading, writing, architecture, validation against a base model.

Every part of lorastrap that touches a LoRA file (training, checkpoints, generation, `style add`,
`clash`, `clash fix`, `--init-from`) goes through this package:

- names.py     fixed kohya/A1111/ComfyUI naming tables (diffusers ↔ sgm UNet, CLIP text encoders)
- core.py      `LoraFile` / `LoraModule`: the canonical parsed form
- read.py      every key variant that circulates → `LoraFile`; bad values refused
- arch.py      `detect_arch` and the architecture labels/metadata values
- write.py     `LoraFile` → the kohya tensors sd-scripts would write; atomic file with hashes
- adapters.py  `LoraFile` ↔ peft adapters on live models
- validate.py  names and shapes against a base model's weight files (`check_fits`)
"""

from lorastrap.models.lora.arch import (
    ARCH_LABELS, BASE_MODEL_VERSION, MODELSPEC_ARCH, arch_from_metadata, carried_metadata, detect_arch,
)
from lorastrap.models.lora.core import LoraFile, LoraFormatError, LoraModule
from lorastrap.models.lora.names import STANDARD_BLOCKS, UnetBlocks
from lorastrap.models.lora.read import parse_lora_tensors, read_lora
from lorastrap.models.lora.write import SavedLora, diffusers_state, kohya_tensors, save_lora, write_lora_file

__all__ = [
    "ARCH_LABELS", "BASE_MODEL_VERSION", "MODELSPEC_ARCH", "STANDARD_BLOCKS", "LoraFile", "LoraFormatError",
    "LoraModule", "SavedLora", "UnetBlocks", "arch_from_metadata", "carried_metadata", "detect_arch",
    "diffusers_state", "kohya_tensors", "parse_lora_tensors", "read_lora", "save_lora", "write_lora_file",
]
