"""Style clash: does a character LoRA survive other style LoRAs, and what makes it survive.

Modules: lora_file (read kohya/diffusers LoRAs), blocks (LBW block names, strings, diffusers dicts,
presets), weightspace (ΔW overlap), fix (compat LoRA), metrics, grid, report (advice), service /
run / fix_run / persist (registry-aware commands). See docs/clash.md.
"""
