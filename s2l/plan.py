"""The build plan: every skill found, every stage spec with its content key. The workflow writes
it at parse time; ``s2l status`` computes the same plan to explain what a build would do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from s2l.model import remembered_weights_sha256
from s2l.schemas import SCHEMA_DIR, validate
from s2l.skill import check_skill_key, skill_sha256
from s2l.specs import SPECS_DIR, plan_specs, write_if_changed

DEFAULT_CONFIG = SCHEMA_DIR.parent / "config.yaml"
MANIFESTS_DIR = Path("build/manifests")
UNCHANGED_MTIME = 946684800  # 2000-01-01: older than any output
STORED_STAGES = ("synthetic", "dataset", "adapter", "eval")


def discover_skills(skills_dir: Path) -> dict[str, tuple[Path, str]]:
    """Skill key -> (folder, content sha256) for every folder with a SKILL.md."""
    skills = {}
    for skill_md in sorted(skills_dir.glob("*/SKILL.md")):
        folder = skill_md.parent
        skills[check_skill_key(folder)] = (folder, skill_sha256(folder))
    return skills


def build_plan(config: dict[str, Any], workdir: Path = Path(".")) -> dict[Path, dict[str, Any]]:
    """Spec path (relative to the work directory) -> spec, for the whole build."""
    skills_dir = Path(config["skills_dir"])
    skills = discover_skills(skills_dir if skills_dir.is_absolute() else workdir / skills_dir)
    weights = remembered_weights_sha256(config["base_model"]["source"], workdir / SPECS_DIR / "model-weights.json")
    return plan_specs(config, skills, weights)


def planned_skills(plan: dict[Path, dict[str, Any]]) -> list[str]:
    return sorted(spec["skill"]["key"] for spec in plan.values() if spec["stage"] == "skill")


def manifest_path(stage: str, skill: str | None = None) -> Path:
    return MANIFESTS_DIR / f"{stage}.json" if skill is None else MANIFESTS_DIR / skill / f"{stage}.json"


def built_key(spec_file: Path) -> str | None:
    """Content key of the outputs now built for a spec file, from their manifest (None if unbuilt)."""
    manifest = MANIFESTS_DIR / spec_file.relative_to(SPECS_DIR)
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8"))["key"]


def write_plan(plan: dict[Path, dict[str, Any]]) -> None:
    """Write changed specs. A spec that changed back to what its outputs were built from (a reverted
    edit, a branch switched back) gets an old mtime: it is no change to them, and Snakemake must not
    rerun the stage for it, whether or not its own metadata (.snakemake/) still remembers them."""
    for path, spec in plan.items():
        if write_if_changed(path, spec) and built_key(path) == spec["key"]:
            os.utime(path, (UNCHANGED_MTIME, UNCHANGED_MTIME))


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dictionaries merge key by key, as Snakemake merges --configfile files."""
    merged = dict(base)
    for name, value in override.items():
        merged[name] = merge_config(merged[name], value) if isinstance(value, dict) and isinstance(
            merged.get(name), dict) else value
    return merged


def load_config(configfiles: list[Path]) -> dict[str, Any]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for path in configfiles:
        config = merge_config(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    validate(config, "config.schema.yaml")
    return config
