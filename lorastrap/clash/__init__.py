"""Style clash: does a character LoRA survive other style LoRAs, and what makes it survive.

LoRA files are read and written by lorastrap.models.lora. Modules: blocks (LBW block names, strings,
diffusers dicts, presets), weightspace (ΔW overlap), projection (the compat LoRA's maths), metrics
(and `MetricSource`, where the lab's reader plugs in), grid, report (advice); options (declared
once), styles (`style add|list`), run (`clash NAME`), compat (`clash fix`), persist: the
registry-aware commands. See docs/clash.md.
"""
