"""Stage specs and plan keys: s2l.engine.specs. Which specs a config change touches is written out by hand
here, from what each stage reads, not derived from the tables in s2l/engine/specs.py."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from s2l.engine.config import merge_config, validated
from s2l.engine.specs import plan_specs, read_spec, write_if_changed
from s2l.schemas import SchemaError

CONFIG = yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text(encoding="utf-8"))
OLD = 1_000_000_000_000_000_000  # 2001-09-09, in ns
SKILLS = {"alpha": (Path("skills/alpha"), "a" * 64), "beta": (Path("skills/beta"), "b" * 64)}
MODEL = "c" * 64
CHAIN = ("parse_skill", "synthesize", "dataset", "train", "evaluate")


def test_write_if_changed(tmp_path):
    path = tmp_path / "specs" / "demo" / "train.json"
    spec = {"stage": "train", "config": {"lora": {"r": 8}}}

    assert write_if_changed(path, spec) is True
    assert read_spec(path) == spec
    assert json.loads(path.read_text()) == spec

    os.utime(path, ns=(OLD, OLD))
    assert write_if_changed(path, copy.deepcopy(spec)) is False
    assert path.stat().st_mtime_ns == OLD

    changed = {"stage": "train", "config": {"lora": {"r": 16}}}
    assert write_if_changed(path, changed) is True
    assert path.stat().st_mtime_ns != OLD
    assert read_spec(path) == changed
    assert not path.with_suffix(".tmp").exists()


def test_write_if_changed_ignores_key_order(tmp_path):
    path = tmp_path / "spec.json"
    assert write_if_changed(path, {"a": 1, "b": 2})
    os.utime(path, ns=(OLD, OLD))
    assert write_if_changed(path, {"b": 2, "a": 1}) is False
    assert path.stat().st_mtime_ns == OLD


def test_write_if_changed_replaces_a_foreign_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"a": 1}')  # same data, different formatting
    assert write_if_changed(path, {"a": 1}) is True
    assert write_if_changed(path, {"a": 1}) is False


def plan(config: dict, skills: dict = SKILLS, model: str = MODEL) -> dict[str, dict]:
    """``"alpha/train"`` / ``"benchmark"`` -> spec."""
    return {str(path.relative_to("build/specs").with_suffix("")): spec
            for path, spec in plan_specs(config, skills, model).items()}


def changes(edit) -> tuple[set[str], set[str]]:
    """(specs whose file changes, specs whose key changes) when ``edit`` is applied to the config."""
    config = copy.deepcopy(CONFIG)
    edit(config)
    before, after = plan(CONFIG), plan(config)
    return ({name for name in before if before[name] != after[name]},
            {name for name in before if before[name]["key"] != after[name]["key"]})


def per_skill(*stages: str) -> set[str]:
    return {f"{skill}/{stage}" for skill in SKILLS for stage in stages}


# The controls (on by default) read every skill's dataset (the shared adapter) and another skill's
# adapter: anything that changes a dataset or an adapter changes them all.
CONTROLS = per_skill("evaluate_controls") | {"train_shared"}
# The serving folder reads every skill's adapter and parsed skill: a change to either changes it.
SERVING = {"prepare_serving"}


def test_lora_rank_changes_training_and_what_reads_the_adapter():
    def edit(config):
        config["lora"]["r"] = 8

    expected = per_skill("train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (expected, expected)


def test_generation_setting_changes_everything_from_synthesis_on():
    def edit(config):
        config["synthesize"]["generator"]["temperature"] = 1.0

    expected = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (expected, expected)


def test_seed_changes_every_seeded_stage_and_what_follows():
    def edit(config):
        config["seed"] = 7

    expected = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (expected, expected)


def test_strict_reruns_parsing_only_and_changes_no_key():
    def edit(config):
        config["strict"] = True

    assert changes(edit) == (per_skill("parse_skill"), set())


def test_minimum_record_counts_rerun_the_dataset_check_only():
    def edit(config):
        config["dataset"]["min_train_records"] = 3

    assert changes(edit) == (per_skill("dataset"), set())


def test_a_longer_teacher_budget_rechecks_the_context_and_regenerates():
    def edit(config):
        config["synthesize"]["teacher"]["max_new_tokens"] = 256

    regenerated = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (regenerated | per_skill("parse_skill"), regenerated)


def test_settings_no_stage_reads_change_nothing():
    def edit(config):
        config["offline"] = not config["offline"]
        config["store"] = "write"
        config["store_dir"] = "elsewhere"

    assert changes(edit) == (set(), set())


def test_a_skill_edit_changes_only_that_skills_chain_the_benchmark_and_the_serving_folder():
    edited = {**SKILLS, "beta": (Path("skills/beta"), "d" * 64)}
    before, after = plan(CONFIG), plan(CONFIG, edited)
    changed = {name for name in before if before[name]["key"] != after[name]["key"]}
    assert changed == {f"beta/{stage}" for stage in CHAIN} | CONTROLS | SERVING | {"benchmark"}


def test_each_skill_is_controlled_by_the_next_skills_adapter_and_the_shared_one():
    three = {**SKILLS, "gamma": (Path("skills/gamma"), "e" * 64)}
    specs = plan(CONFIG, three)
    wrong = {skill: specs[f"{skill}/evaluate_controls"]["controls"]["wrong_adapter"] for skill in three}
    assert wrong == {"alpha": "beta", "beta": "gamma", "gamma": "alpha"}
    assert specs["alpha/evaluate_controls"]["upstream"]["train/beta"] == specs["beta/train"]["key"]
    assert "train/gamma" not in specs["alpha/evaluate_controls"]["upstream"]
    assert {name for name in specs["train_shared"]["upstream"]} == {"prepare_model", "dataset/alpha", "dataset/beta",
                                                                   "dataset/gamma"}
    # One skill alone has no other skill's adapter to be wrong with.
    alone = plan(CONFIG, {"alpha": SKILLS["alpha"]})
    assert alone["alpha/evaluate_controls"]["controls"]["wrong_adapter"] is None


def test_switching_the_controls_off_drops_them_and_touches_no_evaluation():
    def edit(config):
        config["evaluate"]["controls"] = False

    config = copy.deepcopy(CONFIG)
    edit(config)
    before, after = plan(CONFIG), plan(config)
    assert set(before) - set(after) == CONTROLS
    assert {name for name in after if before[name] != after[name]} == {"benchmark"}
    assert set(after["benchmark"]["upstream"]) == {"evaluate/alpha", "evaluate/beta"}


def test_a_model_change_changes_every_key():
    before, after = plan(CONFIG), plan(CONFIG, model="e" * 64)
    assert all(before[name]["key"] != after[name]["key"] for name in before)


def test_skill_spec_carries_the_skill_and_where_it_is():
    spec = plan(CONFIG)["alpha/parse_skill"]
    assert spec["skill"] == {"key": "alpha", "sha256": "a" * 64}
    assert spec["inputs"] == {"dir": "skills/alpha"}
    moved = plan(CONFIG, {**SKILLS, "alpha": (Path("elsewhere/alpha"), "a" * 64)})["alpha/parse_skill"]
    assert moved["key"] == spec["key"]  # where a skill lies is not what it is


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE", "yes", True])
def test_strict_accepts_the_spellings_of_true(spelling):
    assert validated({**CONFIG, "strict": spelling})["strict"] is True


def test_a_non_boolean_strict_names_the_key():
    with pytest.raises(SchemaError, match=r"\$\.strict"):
        validated({**CONFIG, "strict": "maybe"})


def test_nested_numbers_given_on_the_command_line_are_read_as_numbers():
    from snakemake.cli import parse_config

    given = parse_config(["lora={r: 8, alpha: 16.5}", "synthesize={seed_search: {temperatures: [0.5, 1]}}"])
    assert given["lora"] == {"r": "8", "alpha": "16.5"}  # what Snakemake hands over: strings
    config = validated(merge_config(CONFIG, given))
    assert config["lora"]["r"] == 8 and config["lora"]["alpha"] == 16.5
    assert config["synthesize"]["seed_search"]["temperatures"] == [0.5, 1]
    with pytest.raises(SchemaError, match=r"\$\.training\.epochs"):
        validated(merge_config(CONFIG, parse_config(["training={epochs: three}"])))


def test_switching_check_filtering_off_changes_the_synthesis_key():
    def edit(config):
        config["synthesize"]["filter_by_checks"] = False

    expected = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (expected, expected)


def test_more_teacher_examples_recheck_the_context_and_regenerate():
    def edit(config):
        config["synthesize"]["teacher_examples"] = 5

    regenerated = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(edit) == (regenerated | per_skill("parse_skill"), regenerated)


ENDPOINT = {"backend": "openai", "model": "gpt-x", "base_url": "https://api.example.com/v1",
            "connection": {"api_key_env": "EXAMPLE_KEY", "max_concurrency": 8}}


def with_endpoint_teacher(config: dict) -> None:
    config["synthesize"]["teacher"].update(copy.deepcopy(ENDPOINT))


def test_switching_the_teacher_to_an_endpoint_regenerates_and_the_key_variable_is_in_no_spec():
    expected = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert changes(with_endpoint_teacher) == (expected, expected)
    config = copy.deepcopy(CONFIG)
    with_endpoint_teacher(config)
    synthesize = plan(config)["alpha/synthesize"]
    assert synthesize["connections"] == {"teacher": ENDPOINT["connection"]}
    assert "connection" not in synthesize["config"]["synthesize"]["teacher"]
    assert config["synthesize"]["teacher"]["connection"] == ENDPOINT["connection"]  # the config is left whole


def test_how_an_endpoint_is_reached_changes_no_key():
    def edit(config):
        with_endpoint_teacher(config)
        config["synthesize"]["teacher"]["connection"] = {"api_key_env": "OTHER_KEY", "max_concurrency": 32,
                                                         "max_retries": 2, "timeout": 30}

    before = copy.deepcopy(CONFIG)
    with_endpoint_teacher(before)
    after = copy.deepcopy(CONFIG)
    edit(after)
    planned, replanned = plan(before), plan(after)
    assert {name for name in planned if planned[name] != replanned[name]} == per_skill("synthesize")
    assert all(planned[name]["key"] == replanned[name]["key"] for name in planned)


def test_another_endpoint_model_regenerates():
    before = copy.deepcopy(CONFIG)
    with_endpoint_teacher(before)
    after = copy.deepcopy(before)
    after["synthesize"]["teacher"]["model"] = "gpt-y"
    planned, replanned = plan(before), plan(after)
    expected = per_skill("synthesize", "dataset", "train", "evaluate") | CONTROLS | SERVING | {"benchmark"}
    assert {name for name in planned if planned[name]["key"] != replanned[name]["key"]} == expected


def test_old_key_names_are_read_under_their_new_ones_with_a_warning(capsys):
    from snakemake.cli import parse_config

    given = parse_config(["eval={controls: false}", "export={merged: true}", "cache_dir=/tmp/old-store",
                          "generation={teacher: {temperature: 0.3}}"])
    config = validated(merge_config(CONFIG, given))
    assert config["evaluate"]["controls"] is False and config["evaluate"]["samples"] == CONFIG["evaluate"]["samples"]
    assert config["merge"] == {"enabled": True}
    assert config["store_dir"] == "/tmp/old-store"
    assert config["synthesize"]["teacher"]["temperature"] == 0.3
    assert config["synthesize"]["teacher"]["max_new_tokens"] == CONFIG["synthesize"]["teacher"]["max_new_tokens"]
    assert not {"eval", "export", "cache_dir", "generation"} & set(config)
    warned = capsys.readouterr().err
    for old, new in (("eval", "evaluate"), ("export.merged", "merge.enabled"), ("cache_dir", "store_dir"),
                     ("generation", "synthesize")):
        assert f"config key {old} is now {new}" in warned
    assert plan_specs(config, SKILLS, MODEL) == plan_specs(validated(merge_config(CONFIG, {
        "evaluate": {"controls": False}, "merge": {"enabled": True}, "store_dir": "/tmp/old-store",
        "synthesize": {"teacher": {"temperature": 0.3}}})), SKILLS, MODEL)
