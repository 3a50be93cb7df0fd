"""Style clash: does a character LoRA survive other style LoRAs, and what makes it survive.

LoRA files are read and written by lorastrap.models.lora. Modules: blocks (LBW block names, strings, diffusers dicts,
presets), weightspace (ΔW overlap), fix (compat LoRA), metrics, grid, report (advice), service /
run / fix_run / persist (registry-aware commands). See docs/clash.md.
"""
