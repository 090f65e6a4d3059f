"""Finding skills (s2l.engine.plan) and checking them from the command line (s2l check-skill)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from test_skill import write_skill
from workflow_helpers import ROOT, scheduled_jobs

from s2l.engine.plan import PlanError, discover_skills


def test_unusable_folders_are_skipped_with_a_warning_naming_them(tmp_path):
    write_skill(tmp_path, "good-skill")
    write_skill(tmp_path, "Literature_Review")
    write_skill(tmp_path, ".draft")
    lower = write_skill(tmp_path, "lower-case")
    (lower / "SKILL.md").rename(lower / "skill.md")
    (tmp_path / "notes").mkdir()  # a folder with no skill file at all is not a skill, and says nothing
    skills, warnings = discover_skills(tmp_path)
    assert list(skills) == ["good-skill"]
    assert len(warnings) == 3
    by_folder = {warning.split(":")[0]: warning for warning in warnings}
    assert "is not a valid skill key" in by_folder[str(tmp_path / "Literature_Review")]
    assert "hidden" in by_folder[str(tmp_path / ".draft")]
    assert "skill.md, not SKILL.md" in by_folder[str(tmp_path / "lower-case")]


def test_an_empty_skills_dir_is_one_clear_error(tmp_path):
    with pytest.raises(PlanError, match=r"skills_dir .*: no skill in it \(a skill is a folder holding SKILL.md\)$"):
        discover_skills(tmp_path)
    with pytest.raises(PlanError, match="not a folder"):
        discover_skills(tmp_path / "missing")


def test_check_skill_reports_every_folder_and_fails_if_any_failed(tmp_path):
    first = write_skill(tmp_path, "first-bad", frontmatter="name: first-bad\n")  # no description
    good = write_skill(tmp_path, "good-one")
    last = write_skill(tmp_path, "last-bad", frontmatter="name: last-bad\nversion: 2\ndescription: Says ok.\n")
    result = subprocess.run([sys.executable, "-m", "s2l", "check-skill", "--strict", str(first), str(good), str(last)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{first}/SKILL.md: description: missing" in result.stderr
    assert f"ok: {good}" in result.stdout
    assert f"{last}/SKILL.md: spec: strict mode refuses deviations" in result.stderr
    passing = subprocess.run([sys.executable, "-m", "s2l", "check-skill", str(good), str(last)],
                             capture_output=True, text=True)
    assert passing.returncode == 0
    verdicts = [line.split(" (")[0] for line in passing.stdout.splitlines() if line.startswith("ok: ")]
    assert verdicts == [f"ok: {good}", f"ok: {last}"]


def unprivileged(command: list[str]) -> list[str]:
    """``command`` run so that a mode-000 file is unreadable to it: as root (CI, this machine), without
    the capabilities that let root read any file whatever its mode."""
    if os.geteuid() != 0:
        return command
    dropped = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", dropped, "--inh-caps", dropped, *command]


@pytest.fixture
def skills_with_unreadable_ones(tmp_path):
    """good-skill, plus a folder no one may enter, a SKILL.md no one may read and a dangling symlink."""
    skills = tmp_path / "skills"
    write_skill(skills, "good-skill")
    write_skill(skills, "locked-folder").chmod(0o000)
    (write_skill(skills, "locked-file") / "SKILL.md").chmod(0o000)
    dangling = skills / "dangling-link"
    dangling.mkdir()
    (dangling / "SKILL.md").symlink_to("../drafts/SKILL.md")
    yield skills
    (skills / "locked-folder").chmod(0o755)


def test_unreadable_skills_are_named_in_one_line_each_and_the_others_still_plan_check_and_build(
        skills_with_unreadable_ones, tmp_path):
    skills = skills_with_unreadable_ones
    run = {"capture_output": True, "text": True}
    planned = subprocess.run(unprivileged([sys.executable, "-c", "import json, pathlib; from s2l.engine.plan import "
                                           f"discover_skills; print(json.dumps(discover_skills(pathlib.Path('{skills}'))[1]))"]),
                             **run)
    assert planned.returncode == 0, planned.stderr
    assert sorted(json.loads(planned.stdout)) == [
        f"{skills / 'dangling-link'}: skipped, SKILL.md is a symlink to ../drafts/SKILL.md, which does not exist",
        f"{skills / 'locked-file' / 'SKILL.md'}: skipped, cannot read it (Permission denied)",
        f"{skills / 'locked-folder' / 'SKILL.md'}: skipped, cannot read it (Permission denied)",
    ]
    checked = subprocess.run(unprivileged([sys.executable, "-m", "s2l", "check-skill",
                                           *map(str, sorted(skills.iterdir()))]), **run)
    assert checked.returncode == 1
    assert f"ok: {skills / 'good-skill'}" in checked.stdout
    assert sorted(line for line in checked.stderr.splitlines() if line.startswith("error:")) == [
        f"error: {skills / 'dangling-link' / 'SKILL.md'}: file: a symlink to ../drafts/SKILL.md, which does not exist",
        f"error: {skills / 'locked-file' / 'SKILL.md'}: file: cannot read it (Permission denied)",
        f"error: {skills / 'locked-folder' / 'SKILL.md'}: file: cannot read it (Permission denied)",
    ]
    (tmp_path / "test.yaml").write_text(f"skills_dir: {skills}\n")
    dry = subprocess.run(unprivileged([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d",
                                       str(tmp_path), "-n", "--cores", "1", "--configfile",
                                       str(ROOT / "tests" / "quick.yaml"), str(tmp_path / "test.yaml")]), **run)
    assert dry.returncode == 0, dry.stderr
    assert {skill for _, skill in scheduled_jobs(dry.stdout)} <= {"good-skill", "_shared", None}
    assert ("evaluate", "good-skill") in scheduled_jobs(dry.stdout)
    assert f"{skills / 'locked-file' / 'SKILL.md'}: skipped, cannot read it (Permission denied)" in dry.stdout + dry.stderr


def test_status_and_cost_read_the_config_of_the_tree_they_run_in(tmp_path):
    # A copied tree whose config.yaml sets epochs to a word: snakemake run there refuses it, so must s2l.
    shutil.copy(ROOT / "Snakefile", tmp_path / "Snakefile")
    shutil.copytree(ROOT / "skills", tmp_path / "skills")
    config = (ROOT / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(re.sub(r"(?m)^(  epochs:) .*$", r'\1 "three"', config))
    for command in ("status", "cost"):
        ran = subprocess.run([sys.executable, "-m", "s2l", command], cwd=tmp_path, capture_output=True, text=True)
        assert ran.returncode != 0
        assert "training.epochs" in ran.stderr and "three" in ran.stderr, ran.stderr


def test_status_lists_every_stage_and_calls_an_unbuilt_one_not_built(tmp_path):
    shutil.copytree(ROOT / "skills" / "keep-a-changelog", tmp_path / "skills" / "keep-a-changelog")
    (tmp_path / "test.yaml").write_text(f"skills_dir: {tmp_path / 'skills'}\n")
    ran = subprocess.run([sys.executable, "-m", "s2l", "status", "-d", str(tmp_path), "--configfile",
                          str(tmp_path / "test.yaml")], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    rows = [re.split(r"\s{2,}", line.strip()) for line in ran.stdout.splitlines()]
    assert rows == [["*", "prepare_model", "not built"]] + [
        ["keep-a-changelog", stage, "not built"] for stage in ("parse_skill", "synthesize", "dataset", "train",
                                                               "evaluate", "evaluate_controls")] + [
        ["*", "prepare_serving", "not built"], ["*", "train_shared", "not built"], ["*", "benchmark", "not built"]]
