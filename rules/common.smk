# Shared helpers: config validation, wildcard constraints, the build plan (stage specs + keys).
import json
import os
import shlex
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from s2l.engine.config import check_api_keys, validated
from s2l.engine.pipeline import (ADAPTER, BENCHMARK_JSON, BENCHMARK_MARKDOWN, BENCHMARK_PLOT,
                                 CONTROLS_REPORT, DATASET, DATASET_REPORT, EVAL_MARKDOWN, EVAL_REPORT, HOST,
                                 INFERENCE, LIGHT, MERGED, METRICS, MODEL, PARSED_SKILL, SERVING, SHARED_ADAPTER,
                                 SHARED_METRICS, STAGES, SYNTHETIC, TRAINING, USAGE, manifest_path, spec_path)
from s2l.engine.plan import MODEL_PARAMETERS_MEMO, build_plan, write_plan
from s2l.engine.resources import model_job_resources, parameter_count
from s2l.engine.runner import FORCED_ENV
from s2l.errors import UserError
from s2l.skills.skill import SKILL_KEY_PATTERN


try:
    # Replaced, not updated: a key under an old name (s2l/engine/config.py RENAMED_KEYS) is gone.
    _validated = validated(config)
    config.clear()
    config.update(_validated)
    check_api_keys(config)
except UserError as error:
    raise WorkflowError(f"config: {error}") from None

# An endpoint a role is configured with stays reachable: offline only forbids hub downloads.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
for _variable in OFFLINE_VARIABLES:
    if config["offline"]:
        os.environ[_variable] = "1"
    else:
        os.environ.setdefault(_variable, "0")  # as the user has it; "0" (online) when unset


# How a forced job learns that it must build afresh: set at the start of the run (record_forced_jobs);
# a cluster job gets the value its run submitted it with, and keeps it when it parses the workflow.
os.environ.setdefault(FORCED_ENV, "{}")


# Declared, so that cluster jobs get them too.
envvars:
    *OFFLINE_VARIABLES,
    FORCED_ENV,


def record_forced_jobs() -> None:
    """Forced jobs (--forcerun RULE|FILE, --forceall, --force TARGET) build afresh instead of restoring
    from the store. The environment carries this to the jobs: a params value would itself rerun them."""
    settings = workflow.dag_settings
    os.environ[FORCED_ENV] = json.dumps({
        "all": settings.forceall,
        "names": sorted(set(settings.forcerun) | (set(settings.targets) if settings.forcetargets else set())),
    })


BUILD_STARTED = time.time()


def report_results() -> None:
    """End a build with what it learned: per skill evaluated in this run, the result in one sentence
    and where its eval report is. s2l.reports.report is imported only when this run wrote an eval report,
    never for a dry run or a no-op."""
    written = [path for path in map(Path, expand(EVAL_REPORT, skill=SKILLS))
               if path.is_file() and path.stat().st_mtime >= BUILD_STARTED]
    if written:
        from s2l.reports.report import result_sentences

        print("\n".join(["", "Results:", *result_sentences(written)]))


S2L = f"{shlex.quote(sys.executable)} -m s2l"
STORE = f"--store-dir {shlex.quote(config['store_dir'])} --store {config['store']}"
CONTROLS = config["evaluate"]["controls"]
# Threads of a model job: locally Snakemake scales this down to --cores; a cluster job asks for exactly this.
MODEL_THREADS = config["model_threads"]


wildcard_constraints:
    skill=SKILL_KEY_PATTERN,


def spec(stage: str) -> str:
    return str(spec_path(stage, "{skill}"))


def manifest(stage: str) -> str:
    return str(manifest_path(stage, "{skill}"))


# Refresh build/specs/: a spec file changes, and so reruns its stage, only on a real change. A folder
# that cannot be a skill is skipped with a warning; the others build.
try:
    PLAN = build_plan(config)
except UserError as error:
    raise WorkflowError(str(error)) from None
for _warning in PLAN.warnings:
    logger.warning(f"warning: {_warning}")
write_plan(PLAN)
SKILLS = PLAN.skills
# What a model job asks a scheduler for, sized from the base model (headers only, no weight loaded).
PARAMETERS = parameter_count(config["base_model"]["source"], MODEL_PARAMETERS_MEMO)
_INFERENCE = model_job_resources(PARAMETERS, config["gpu"], training=False)
RESOURCES = {INFERENCE: _INFERENCE, TRAINING: model_job_resources(PARAMETERS, config["gpu"], training=True),
             HOST: {"mem_mb": _INFERENCE["mem_mb"]}, LIGHT: {}}


def resources_of(stage: str) -> dict:
    """What the stage's declared kind asks a scheduler for (s2l/engine/pipeline.py)."""
    return RESOURCES[STAGES[stage].resources]


def log_of(stage: str) -> str:
    return STAGES[stage].log()


def benchmark_of(stage: str) -> str:
    return STAGES[stage].benchmark()


def wrong_adapter(wildcards) -> list[str]:
    """Another skill's adapter, the wrong-adapter control (none when the build has one skill)."""
    other = PLAN.specs[spec_path("evaluate_controls", wildcards.skill)]["controls"]["wrong_adapter"]
    return [] if other is None else [ADAPTER.format(skill=other)]
