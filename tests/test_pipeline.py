"""The rules and the stage declarations (s2l/engine/pipeline.py) agree: every rule but ``all`` is a declared
stage, each reads the outputs of exactly the stages its declaration names, as Snakemake itself
draws the graph (``--rulegraph``), and each job writes the outputs and the log its stage declares, as
a dry run lists them; both for a build with every optional stage on and the serving folder asked for."""

from __future__ import annotations

import re
from pathlib import Path

from workflow_helpers import ROOT, snakemake

from s2l.engine.pipeline import STAGES, manifest_path

# The default target and what is built only on request.
TARGETS = ("all", "prepare_serving")


def every_stage_on(workdir: Path) -> None:
    (workdir / "test.yaml").write_text(f"skills_dir: {ROOT / 'skills'}\nmerge: {{enabled: true}}\n"
                                       "evaluate: {controls: true}\n")


def rule_graph(workdir: Path) -> dict[str, set[str]]:
    """Rule -> the rules whose outputs it reads, from ``snakemake --rulegraph``."""
    every_stage_on(workdir)
    result = snakemake(workdir, *TARGETS, "--rulegraph")
    assert result.returncode == 0, result.stderr
    names = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', result.stdout, flags=re.MULTILINE))
    reads: dict[str, set[str]] = {name: set() for name in names.values()}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", result.stdout, flags=re.MULTILINE):
        reads[names[target]].add(names[source])
    return reads


def test_each_rule_reads_what_its_stage_declares(tmp_path: Path) -> None:
    reads = rule_graph(tmp_path)
    assert set(reads) - {"all"} == set(STAGES)
    for name, stage in STAGES.items():
        assert reads[name] == {*stage.upstream, *stage.other_skills, *stage.facts_from}, name


def dry_run_jobs(workdir: Path) -> list[dict[str, str | list[str]]]:
    """Each job of a dry run of the whole build: its rule, skill, outputs and log."""
    every_stage_on(workdir)
    result = snakemake(workdir, *TARGETS, "--dry-run")
    assert result.returncode == 0, result.stderr
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", result.stdout, flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, flags=re.MULTILINE))
        skill = re.search(r"skill=([\w-]+)", fields.get("wildcards", ""))
        jobs.append({"rule": re.match(r"(?:local)?rule (\w+):", block).group(1),
                     "skill": skill.group(1) if skill else None,
                     "outputs": sorted(fields.get("output", "").split(", ")), "log": fields.get("log")})
    return jobs


def test_each_job_writes_what_its_stage_declares(tmp_path: Path) -> None:
    jobs = [job for job in dry_run_jobs(tmp_path) if job["rule"] != "all"]
    assert {job["rule"] for job in jobs} == set(STAGES)
    for job in jobs:
        stage = STAGES[job["rule"]]
        skill = job["skill"] if stage.per_skill else None
        declared = [stage.output(name, skill or "") for name in stage.outputs]
        assert job["outputs"] == sorted([*declared, str(manifest_path(stage.name, skill))]), job
        assert job["log"] == (stage.log(skill) if skill else stage.log()), job
    # The paths are the build's own, not restated here by the declarations' helpers alone.
    train = next(job for job in jobs if job["rule"] == "train" and job["skill"] == "conventional-commits")
    assert train["outputs"] == ["build/adapters/conventional-commits",
                                "build/adapters/conventional-commits.metrics.jsonl",
                                "build/manifests/conventional-commits/train.json"]
    assert train["log"] == "build/logs/train/conventional-commits.log"
