"""Running the real workflow and the benchmark scripts from tests, and reading what a dry run schedules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def snakemake(workdir: Path, *args: str, configfiles: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with tests/quick.yaml, ``workdir/test.yaml`` and ``configfiles``."""
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--cores", "2", *args, "--configfile", str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml"),
               *map(str, configfiles)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def scheduled_jobs(dry_run_output: str) -> set[tuple[str, str | None]]:
    """(rule, skill) for every job a dry run lists, leaving out the ``all`` target itself."""
    jobs = set()
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", dry_run_output, flags=re.MULTILINE):
        rule = re.match(r"(?:local)?rule (\w+):$", block, flags=re.MULTILINE)
        if rule and rule.group(1) != "all":
            skill = re.search(r"^\s+wildcards: skill=([\w-]+)", block, flags=re.MULTILINE)
            jobs.add((rule.group(1), skill.group(1) if skill else None))
    return jobs


BENCHMARKS = ROOT / "benchmarks"


def run_script(name: str, *args: str | Path) -> str:
    """Run ``benchmarks/<name>`` offline; its standard output."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], capture_output=True,
                            text=True, timeout=1200, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout
