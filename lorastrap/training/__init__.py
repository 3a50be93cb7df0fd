"""LoRA training: dataset buckets, latent/text caches, the peft loop, the kohya-format saver."""
