"""Finding skills (s2l.plan) and checking them from the command line (s2l check-skill)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_skill import write_skill

from s2l.plan import PlanError, discover_skills


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
    assert passing.returncode == 0 and passing.stdout.count("ok: ") == 2
