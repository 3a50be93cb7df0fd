"""`lorastrap lab draw|read|pretrain --help`: thin commands over the lab services."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lorastrap.cli.lab import lab


def test_draw_then_read_round_trips_the_attributes(tmp_path):
    runner = CliRunner()
    result = runner.invoke(lab, ["draw", "--character", "purple-cat-tail-yellow", "--views",
                                 "from behind,from above", "--style", "thick outlines", "--count", "2",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 4 and len(list(tmp_path.glob("*.txt"))) == 4
    result = runner.invoke(lab, ["read", "--json", *map(str, files)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["attrs"]["view"] for r in rows} == {"from behind", "from above"}
    for row in rows:
        assert row["attrs"]["hair"] == "purple hair" and row["attrs"]["dress"] == "yellow dress"
        assert row["attrs"]["ears"] == "cat ears" and row["attrs"]["tail"] == "tail"
        assert row["attrs"]["style"] == "thick outlines"


def test_bad_input_is_a_one_line_user_error(tmp_path):
    from lorastrap.kernel.errors import UserError

    result = CliRunner().invoke(lab, ["draw", "--character", "pink-fox-tail-blue", "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError) and "hair-ears-tail-dress" in str(result.exception)
    result = CliRunner().invoke(lab, ["draw", "--character", "red-fox-tail-blue", "--views", "from space",
                                      "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError) and "from side" in str(result.exception)
    assert not list(tmp_path.iterdir())


def test_pretrain_and_eval_document_their_options():
    runner = CliRunner()
    text = runner.invoke(lab, ["pretrain", "--help"]).output
    for option in ("--out", "--time-budget-s", "--vae-steps", "--unet-steps", "--resume", "--device"):
        assert option in text
    text = runner.invoke(lab, ["eval", "--help"]).output
    for option in ("--characters", "--seeds", "--views", "--lora-steps", "--no-style", "--pick", "--curator",
                   "--set", "--reference-arms"):
        assert option in text
    assert "SIMULATED" in text  # the careful curator is labelled as the benchmark's simulation


def test_eval_refuses_bad_levers_before_any_work(tmp_path):
    runner = CliRunner()
    cases = [(["--pick", "1,12"], "--pick"), (["--pick", "1,1"], "--pick"), (["--curator", "careful"], "--bootstrap"),
             (["--bootstrap", "--set", "bootstrap.nope=1"], "unknown setting"),
             (["--bootstrap", "--set", "bootstrap.candidate_prompt=words"], "candidate_prompt"),
             (["--bootstrap", "--set", "training.character.bogus=1"], "bogus"),
             (["--reference-arms", "a,z"], "--reference-arms")]
    for args, message in cases:
        result = runner.invoke(lab, ["eval", "--out", str(tmp_path / "out"), *args])
        assert result.exit_code != 0 and message in (result.output + str(result.exception)), args
    assert not (tmp_path / "out").exists()
