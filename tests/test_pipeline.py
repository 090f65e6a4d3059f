"""The rules and the stage declarations (s2l/pipeline.py) agree: every rule but ``all`` is a declared
stage, and each reads the outputs of exactly the stages its declaration names, as Snakemake itself
draws the graph (``--rulegraph``) for a build with every optional stage on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from s2l.pipeline import STAGES
from workflow_helpers import ROOT, snakemake


def rule_graph(workdir: Path) -> dict[str, set[str]]:
    """Rule -> the rules whose outputs it reads, from ``snakemake --rulegraph``."""
    (workdir / "test.yaml").write_text(f"skills_dir: {ROOT / 'skills'}\nexport: {{merged: true}}\n"
                                       "eval: {controls: true}\n")
    result = snakemake(workdir, "--rulegraph")
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



ENGINE_MODULES = ("pipeline", "config", "specs", "plan", "runner", "store", "hashing", "status", "resources")


def test_the_build_engine_loads_no_torch() -> None:
    """Snakemake parses the workflow at every run and in every cluster job: the modules it imports to
    plan a build must not pull in torch (seconds each time)."""
    code = ("import importlib, sys\n"
            f"for name in {ENGINE_MODULES!r}:\n"
            "    importlib.import_module(f's2l.{name}')\n"
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
