# Shared helpers: config validation, skill discovery, wildcard constraints, stage specs.
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from s2l.skill import SKILL_KEY_PATTERN, SkillError, check_skill_key, skill_sha256
from s2l.specs import stage_spec, write_if_changed


validate(config, "../schemas/config.schema.yaml")

if config["offline"]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

S2L = f"{shlex.quote(sys.executable)} -m s2l"
SPECS = Path("build/specs")
BENCHMARK = multiext("build/benchmark", ".json", ".md", ".png")
# Model stages use every core they are given; Snakemake scales this down to --cores.
MODEL_THREADS = 16


wildcard_constraints:
    skill=SKILL_KEY_PATTERN,


def discover_skills(skills_dir: Path) -> list[str]:
    """Every folder with a SKILL.md is a skill; its folder name is its build key."""
    try:
        return [check_skill_key(path.parent) for path in sorted(skills_dir.glob("*/SKILL.md"))]
    except SkillError as error:
        raise WorkflowError(str(error)) from None


def write_specs(skills: list[str]) -> None:
    """Refresh build/specs/: a spec file changes, and so reruns its stage, only on a real change."""
    write_if_changed(SPECS / "model.json", stage_spec("model", config))
    for key in skills:
        folder = SKILLS_DIR / key
        skill = {"key": key, "dir": str(folder), "sha256": skill_sha256(folder)}
        write_if_changed(SPECS / key / "skill.json", stage_spec("skill", config, skill))
        for stage in ("synthetic", "dataset", "adapter", "eval"):
            write_if_changed(SPECS / key / f"{stage}.json", stage_spec(stage, config))


def spec(stage: str) -> str:
    return str(SPECS / "{skill}" / f"{stage}.json")


SKILLS_DIR = Path(config["skills_dir"])
SKILLS = discover_skills(SKILLS_DIR)
write_specs(SKILLS)
