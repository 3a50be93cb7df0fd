"""kohya metadata of a run whose text encoder trained: sd-scripts reads a missing or None text-encoder
rate as the UNet rate, so the real one is written."""

from __future__ import annotations

from lorastrap.training.lora_metadata import RunFacts, build_metadata


def _facts() -> RunFacts:
    return RunFacts(arch="sd15", base_name="tiny", base_hash="ab" * 32, resolution=(64, 64), rank=4, alpha=4.0,
                    steps=10, epoch=1, started_at=0.0, finished_at=1.0, prediction_type="epsilon",
                    output_name="kit", trigger="kit_xyz", images=[("1_kit", "kit_xyz, 1girl", 1)])


def test_the_text_encoder_rate_is_written_as_trained() -> None:
    config = {"learning_rate": 1e-4, "max_train_steps": 10, "train_text_encoder": True}
    half = build_metadata(_facts(), config)
    assert (half["ss_text_encoder_lr"], half["ss_network_train_unet_only"]) == ("5e-05", "False")
    given = build_metadata(_facts(), {**config, "text_encoder_lr": 2e-5})
    assert given["ss_text_encoder_lr"] == "2e-05" and given["ss_unet_lr"] == "0.0001"
