"""Stage specs: s2l.specs."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from s2l.specs import STAGE_CONFIG_KEYS, STAGE_VERSIONS, read_spec, stage_spec, write_if_changed

CONFIG = yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text(encoding="utf-8"))
OLD = 1_000_000_000_000_000_000  # 2001-09-09, in ns


def test_write_if_changed(tmp_path):
    path = tmp_path / "specs" / "demo" / "adapter.json"
    spec = {"stage": "adapter", "config": {"lora": {"r": 8}}}

    assert write_if_changed(path, spec) is True
    assert read_spec(path) == spec
    assert json.loads(path.read_text()) == spec

    os.utime(path, ns=(OLD, OLD))
    assert write_if_changed(path, copy.deepcopy(spec)) is False
    assert path.stat().st_mtime_ns == OLD

    changed = {"stage": "adapter", "config": {"lora": {"r": 16}}}
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


@pytest.mark.parametrize("stage", sorted(STAGE_CONFIG_KEYS))
def test_stage_spec_has_only_its_keys(stage):
    spec = stage_spec(stage, CONFIG)
    assert spec["stage"] == stage
    assert spec["version"] == STAGE_VERSIONS[stage]
    assert set(spec["config"]) == set(STAGE_CONFIG_KEYS[stage])
    assert "skill" not in spec
    for key in STAGE_CONFIG_KEYS[stage]:
        assert spec["config"][key] == CONFIG[key]


def test_every_stage_has_a_version():
    assert set(STAGE_VERSIONS) == set(STAGE_CONFIG_KEYS)


def specs_for(config: dict) -> dict[str, dict]:
    return {stage: stage_spec(stage, config) for stage in STAGE_CONFIG_KEYS}


def changed_stages(edit) -> set[str]:
    config = copy.deepcopy(CONFIG)
    edit(config)
    before, after = specs_for(CONFIG), specs_for(config)
    return {stage for stage in STAGE_CONFIG_KEYS if before[stage] != after[stage]}


def test_lora_change_reruns_only_adapter():
    def edit(config):
        config["lora"]["r"] = config["lora"]["r"] * 2

    assert changed_stages(edit) == {"adapter"}


def test_generation_change_reruns_only_synthetic():
    def edit(config):
        config["generation"]["train_examples"] = config["generation"]["train_examples"] + 1

    assert changed_stages(edit) == {"synthetic"}


def test_seed_change_reruns_seeded_stages():
    def edit(config):
        config["seed"] = config["seed"] + 1

    assert changed_stages(edit) == {"synthetic", "adapter", "eval"}


def test_unrelated_key_changes_nothing():
    def edit(config):
        config["offline"] = not config["offline"]

    assert changed_stages(edit) == set()


def test_missing_config_key_raises():
    config = {key: value for key, value in CONFIG.items() if key != "lora"}
    with pytest.raises(KeyError):
        stage_spec("adapter", config)
    assert stage_spec("synthetic", config) == stage_spec("synthetic", CONFIG)


def test_skill_spec_carries_the_skill(tmp_path):
    skill = {"key": "demo", "dir": "skills/demo", "sha256": "a" * 64}
    spec = stage_spec("skill", CONFIG, skill)
    assert spec["skill"] == skill
    assert spec["config"] == {"strict": CONFIG["strict"]}

    other = stage_spec("skill", CONFIG, {**skill, "sha256": "b" * 64})
    path = tmp_path / "skill.json"
    assert write_if_changed(path, spec) is True
    assert write_if_changed(path, spec) is False
    assert write_if_changed(path, other) is True
    assert read_spec(path)["skill"]["sha256"] == "b" * 64
