"""``s2l check-skill``: what a build will make of a skill, said before it runs (s2l.data.readiness)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_skill(*folders: Path, config: dict | None = None, tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    extra = []
    if config is not None:
        (tmp_path / "extra.yaml").write_text(json.dumps(config))
        extra = ["--configfile", str(tmp_path / "extra.yaml")]
    return subprocess.run([sys.executable, "-m", "s2l", "check-skill", *map(str, folders), *extra],
                          capture_output=True, text=True, timeout=120)


def without_examples(tmp_path: Path) -> Path:
    """conventional-commits with its worked examples section removed (its checks kept)."""
    folder = tmp_path / "bare-commits"
    shutil.copytree(ROOT / "skills" / "conventional-commits", folder)
    text = (folder / "SKILL.md").read_text()
    (folder / "SKILL.md").write_text(text[: text.index("## Examples")].replace("name: conventional-commits",
                                                                             "name: bare-commits"))
    return folder


def without_checks(tmp_path: Path) -> Path:
    folder = tmp_path / "unchecked-commits"
    shutil.copytree(ROOT / "skills" / "conventional-commits", folder)
    path = folder / "SKILL.md"
    path.write_text(path.read_text().replace("name: conventional-commits", "name: unchecked-commits"))
    evals = json.loads((folder / "evals" / "evals.json").read_text())
    evals.pop("checks")
    (folder / "evals" / "evals.json").write_text(json.dumps(evals))
    return folder


def report_of(output: str, folder: Path) -> list[str]:
    """The indented lines check-skill printed under ``folder``'s ``ok:`` line."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(f"ok: {folder} "))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    return block


def test_check_skill_says_what_the_teacher_gets_for_a_skill_with_examples_one_without_and_one_without_checks(
        tmp_path: Path) -> None:
    shipped = ROOT / "skills" / "keep-a-changelog"
    bare, unchecked = without_examples(tmp_path), without_checks(tmp_path)
    result = check_skill(shipped, bare, unchecked)
    assert result.returncode == 0, result.stderr

    report = report_of(result.stdout, shipped)
    assert report[0] == "worked examples: 2 with a request: line 33 (labelled), line 46 (labelled)"
    assert "counter-examples (never shown): 0" in report
    assert "form: answers open with '## ['" in report
    assert "checks: 11 skill-level, 8 evals.json case(s)" in report
    assert "decoding: the local teacher is held to the 1 check(s) anchored at the answer's start" in report
    assert report[-1].startswith("verdict: ready after a seed search (2 worked example(s); a seed search finds the "
                                 "other 1")

    report = report_of(result.stdout, bare)
    assert report[0] == "worked examples: 0 with a request"
    assert "seed search: will look for 3 more worked example(s) (synthesize.teacher_examples 3), up to 128 answers" \
        in report
    assert report[-1].startswith("verdict: ready after a seed search (0 worked example(s)")

    report = report_of(result.stdout, unchecked)
    assert "checks: 0 skill-level, 8 evals.json case(s)" in report
    assert not any(line.startswith("decoding:") for line in report)
    assert report[-1].startswith("verdict: unfiltered (the teacher's answers are kept unfiltered: add checks")


def test_with_a_judge_a_skill_without_checks_is_judged_and_enough_examples_need_no_search(tmp_path: Path) -> None:
    unchecked = without_checks(tmp_path)
    judge = {"backend": "openai", "model": "judge-model", "base_url": "http://127.0.0.1:9/v1", "temperature": 0,
             "top_p": 1, "max_new_tokens": 64}
    result = check_skill(unchecked, ROOT / "skills" / "conventional-commits", tmp_path=tmp_path,
                         config={"evaluate": {"judge": judge}, "synthesize": {"teacher_examples": 2}})
    assert result.returncode == 0, result.stderr
    assert report_of(result.stdout, unchecked)[-1].startswith("verdict: judged (no machine checks; the judge (openai)")
    shipped = report_of(result.stdout, ROOT / "skills" / "conventional-commits")
    assert not any(line.startswith("seed search") for line in shipped)
    assert shipped[-1] == "verdict: ready (2 worked examples shown to the teacher, 5 checks filter its answers)"


def test_a_counter_example_is_listed_apart(tmp_path: Path) -> None:
    folder = without_examples(tmp_path)
    path = folder / "SKILL.md"
    path.write_text(path.read_text() + "## Examples\n\n**Bad:** `Fixed stuff.`\n\n**Good:** `fix(io): close files`\n")
    report = report_of(check_skill(folder).stdout, folder)
    lines = path.read_text().splitlines()
    bad = next(n for n, line in enumerate(lines, 1) if line.startswith("**Bad:**"))
    assert f"counter-examples (never shown): 1: line {bad}" in report
    assert f"answers shown without a request: 1: line {bad + 2} (labelled)" in report


def test_check_skill_refuses_a_skill_too_long_for_the_context_as_the_build_does(tmp_path: Path,
                                                                                base_model_dir: Path) -> None:
    folder = without_examples(tmp_path)
    path = folder / "SKILL.md"
    path.write_text(path.read_text() + "\n".join(f"- Rule {n}: keep the summary short and exact." for n in range(2500)))
    refused = subprocess.run([sys.executable, "-m", "s2l", "check-skill", str(folder), "--model", str(base_model_dir)],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    message = re.search(r"bare-commits/SKILL.md: length: skill 'bare-commits' needs ([\d,]+) tokens.*context is "
                        r"8,192 tokens", refused.stderr)
    assert message and int(message.group(1).replace(",", "")) > 8192
    # No prepared model where it looks: said, not silently passed.
    unchecked = subprocess.run([sys.executable, "-m", "s2l", "check-skill", str(folder), "--model",
                                str(tmp_path / "build" / "models" / "base")], capture_output=True, text=True, timeout=120)
    assert unchecked.returncode == 0
    assert "context: not checked (no prepared base model; `snakemake build/models/base` prepares it)" in \
        report_of(unchecked.stdout, folder)
