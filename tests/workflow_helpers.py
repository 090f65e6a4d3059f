"""Running the real workflow from tests, and reading what a dry run schedules."""

from __future__ import annotations

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
