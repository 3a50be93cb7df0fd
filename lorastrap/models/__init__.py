"""Base models: sources (diffusers folder, hub id, single file), hashing, the built-in tiny model."""
