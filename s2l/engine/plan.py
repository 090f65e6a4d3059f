"""The build plan: every skill found, every stage spec with its plan key. The workflow writes it at
parse time; ``s2l status`` computes the same plan to explain what a build would do.

A folder that cannot be a skill (a name that is no valid key, a hidden folder, a ``skill.md`` in
the wrong case) is skipped with a warning naming it, so one bad folder never stops the others.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l.engine.pipeline import MANIFESTS_DIR, SPECS_DIR
from s2l.engine.source import source_sha256
from s2l.engine.specs import plan_specs, write_if_changed
from s2l.errors import UserError
from s2l.skills.skill import SKILL_FILE, SKILL_KEY_PATTERN, is_valid_skill_key, skill_sha256

UNCHANGED_MTIME = 946684800  # 2000-01-01: older than any output
MODEL_SOURCE_MEMO = SPECS_DIR / "model-source.json"  # the source's content hash and the stamp it was taken at
MODEL_PARAMETERS_MEMO = SPECS_DIR / "model-parameters.json"  # likewise its parameter count


class PlanError(UserError):
    """Nothing to build: the skills folder is missing or holds no skill."""


@dataclass(frozen=True)
class BuildPlan:
    specs: dict[Path, dict[str, Any]]
    warnings: list[str]

    @property
    def skills(self) -> list[str]:
        return sorted(spec["skill"]["key"] for spec in self.specs.values() if spec["stage"] == "parse_skill")


def skipped_folder(folder: Path) -> str | None:
    """Why ``folder`` is not built as a skill, or None when it is one."""
    if folder.name.startswith("."):
        return "a hidden folder"
    skill_file = folder / SKILL_FILE
    if skill_file.is_symlink() and not skill_file.exists():
        return f"{SKILL_FILE} is a symlink to {os.readlink(skill_file)}, which does not exist"
    if not skill_file.is_file():
        misnamed = [p.name for p in folder.iterdir() if p.name.lower() == SKILL_FILE.lower()]
        return f"it holds {misnamed[0]}, not {SKILL_FILE} (the name is case-sensitive)" if misnamed else None
    if not is_valid_skill_key(folder.name):
        return (f"{folder.name!r} is not a valid skill key ({SKILL_KEY_PATTERN}: lowercase letters, digits and "
                f"single hyphens); rename the folder to build it")
    return None


def discover_skills(skills_dir: Path) -> tuple[dict[str, tuple[Path, str]], list[str]]:
    """(skill key -> (folder, content sha256), warnings about folders skipped)."""
    if not skills_dir.is_dir():
        raise PlanError(f"skills_dir {skills_dir}: not a folder")
    skills, warnings = {}, []
    for folder in sorted(p for p in skills_dir.iterdir() if p.is_dir()):
        try:
            reason = skipped_folder(folder)
            if reason:
                warnings.append(f"{folder}: skipped, {reason}")
            elif (folder / SKILL_FILE).is_file():
                skills[folder.name] = (folder, skill_sha256(folder))
        except OSError as error:  # one unreadable skill must not stop the others from building
            warnings.append(f"{error.filename or folder}: skipped, cannot read it ({error.strerror})")
    if not skills:
        raise PlanError(f"skills_dir {skills_dir}: no skill in it (a skill is a folder holding {SKILL_FILE})"
                        + "".join(f"; {warning}" for warning in warnings))
    return skills, warnings


def build_plan(config: dict[str, Any], workdir: Path = Path(".")) -> BuildPlan:
    """Spec path (relative to the work directory) -> spec, for the whole build."""
    skills_dir = Path(config["skills_dir"])
    skills, warnings = discover_skills(skills_dir if skills_dir.is_absolute() else workdir / skills_dir)
    model = source_sha256(config["base_model"]["source"], workdir / MODEL_SOURCE_MEMO)
    return BuildPlan(plan_specs(config, skills, model), warnings)


def built_spec(spec_file: Path) -> dict[str, Any] | None:
    """The spec the outputs now built for a spec file came from, from their manifest (None if unbuilt)."""
    manifest = MANIFESTS_DIR / spec_file.relative_to(SPECS_DIR)
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8"))["spec"]


def write_plan(plan: BuildPlan) -> None:
    """Write changed specs. A spec that changed back to what its outputs were built from (a reverted
    edit, a branch switched back) gets an old mtime: it is no change to them, and Snakemake must not
    rerun the stage for it, whether or not its own metadata (.snakemake/) still remembers them."""
    for path, spec in plan.specs.items():
        if write_if_changed(path, spec) and built_spec(path) == spec:
            os.utime(path, (UNCHANGED_MTIME, UNCHANGED_MTIME))
