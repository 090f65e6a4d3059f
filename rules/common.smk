# Shared helpers: config validation, wildcard constraints, the build plan (stage specs + keys).
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from s2l.plan import build_plan, manifest_path, planned_skills, write_plan
from s2l.skill import SKILL_KEY_PATTERN, SkillError
from s2l.specs import spec_path


validate(config, "../schemas/config.schema.yaml")

if config["offline"]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

S2L = f"{shlex.quote(sys.executable)} -m s2l"
CACHE_DIR = shlex.quote(config["cache_dir"])
BENCHMARK = multiext("build/benchmark", ".json", ".md", ".png")
# Model stages use every core they are given; Snakemake scales this down to --cores.
MODEL_THREADS = 16


wildcard_constraints:
    skill=SKILL_KEY_PATTERN,


def spec(stage: str) -> str:
    return str(spec_path(stage, "{skill}"))


def manifest(stage: str) -> str:
    return str(manifest_path(stage, "{skill}"))


# Refresh build/specs/: a spec file changes, and so reruns its stage, only on a real change.
try:
    PLAN = build_plan(config)
except SkillError as error:
    raise WorkflowError(str(error)) from None
write_plan(PLAN)
SKILLS = planned_skills(PLAN)
