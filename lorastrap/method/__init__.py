"""The bootstrap method: the stage machine, one step, the view plan, candidates, curation and its
assist, and the LoRA lineage."""
