"""A non-editable install works: the package carries its default config and its schemas, so
``s2l check-skill`` and a dry run of the workflow need nothing from the source tree but the
Snakefile and the rules."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from workflow_helpers import ROOT


def run(*command: str | Path, cwd: Path) -> str:
    # Run from outside the checkout, with no PYTHONPATH, so nothing but the install provides `s2l`.
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run(list(map(str, command)), cwd=cwd, capture_output=True, text=True, timeout=600,
                            env=environment)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.mark.workflow
def test_a_wheel_install_checks_skills_and_plans_a_build(tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp_path / "dist",
        ROOT, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("s2l-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    # The dependencies come from this environment: a path listed in a .pth file, whose own .pth files
    # (this checkout's editable install among them) are not run, so `s2l` can only be the wheel's.
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel, cwd=tmp_path)
    assert run(python, "-c", "import s2l; print(s2l.__file__)", cwd=tmp_path).startswith(str(site))

    checked = run(venv / "bin" / "s2l", "check-skill", *sorted((ROOT / "skills").iterdir()), cwd=tmp_path)
    verdicts = [line for line in checked.splitlines() if line.startswith("ok: ")]
    assert verdicts == [f"ok: {ROOT / 'skills' / skill} (8 evals, 0 warnings)"
                        for skill in ("conventional-commits", "google-docstrings", "keep-a-changelog")]

    planned = run(python, "-m", "snakemake", "-n", "-s", ROOT / "Snakefile", "-d", tmp_path / "work", "--cores", "1",
                  "--config", f"skills_dir={ROOT / 'skills'}", cwd=tmp_path)
    assert "train" in planned and "benchmark" in planned
