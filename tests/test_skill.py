"""Skill parsing and validation: s2l.skills.skill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from s2l.skills.checks import failed_checks
from s2l.skills.skill import SkillError, check_skill_key, is_valid_skill_key, load_skill, skill_sha256

SKILLS_DIR = Path(__file__).parent.parent / "skills"
SHIPPED = sorted(path.parent.name for path in SKILLS_DIR.glob("*/SKILL.md"))

GOOD_EVALS = {
    "skill_name": "demo",
    "checks": [{"type": "contains", "pattern": "ok"}],
    "evals": [{"id": 1, "prompt": "Say ok.", "expected_output": "ok"}],
}


def write_skill(
    root: Path,
    key: str = "demo",
    frontmatter: str | None = None,
    body: str = "# Demo\n\nSay ok.\n",
    evals: dict | str | None = GOOD_EVALS,
    raw: bytes | None = None,
) -> Path:
    """Create root/key/SKILL.md (from ``raw`` bytes if given) and, unless evals is None, evals.json."""
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    if frontmatter is None:
        frontmatter = f"name: {key}\ndescription: A demo skill that says ok.\n"
    if raw is None:
        raw = f"---\n{frontmatter}---\n{body}".encode()
    (folder / "SKILL.md").write_bytes(raw)
    if evals is not None:
        (folder / "evals").mkdir(exist_ok=True)
        text = evals if isinstance(evals, str) else json.dumps(evals)
        (folder / "evals" / "evals.json").write_text(text, encoding="utf-8")
    return folder


def load_error(folder: Path, strict: bool = False) -> SkillError:
    with pytest.raises(SkillError) as info:
        load_skill(folder, strict=strict)
    return info.value


# --- shipped skills ---------------------------------------------------------------------------


def test_skills_are_shipped():
    assert len(SHIPPED) >= 3


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_skill_is_strictly_valid_and_its_expected_outputs_pass(key):
    skill = load_skill(SKILLS_DIR / key, strict=True)
    assert skill.key == key
    assert skill.name == key
    assert skill.warnings == []
    assert len(skill.evals) >= 8
    for case in skill.evals:
        failures = failed_checks(skill.checks + case.get("checks", []), case["expected_output"])
        assert failures == [], f"eval {case['id']}: {failures}"


# --- a good skill -----------------------------------------------------------------------------


def test_good_skill_loads(tmp_path):
    folder = write_skill(tmp_path)
    skill = load_skill(folder, strict=True)
    assert skill.key == "demo"
    assert skill.name == "demo"
    assert skill.description == "A demo skill that says ok."
    assert skill.body == "# Demo\n\nSay ok."
    assert skill.path == str(folder / "SKILL.md")
    assert skill.warnings == []
    assert skill.checks == GOOD_EVALS["checks"]
    assert skill.evals == GOOD_EVALS["evals"]
    assert skill.sha256 == skill_sha256(folder)


# --- errors name the file and the field ---------------------------------------------------------


@pytest.mark.parametrize(
    "content, field, words",
    [
        ("# No frontmatter\n", "frontmatter", "missing"),
        ("---\nname: demo\ndescription: d\n", "frontmatter", "not terminated"),
        ("---\nname: [unclosed\ndescription: d\n---\nbody\n", "frontmatter", "unparseable YAML"),
        ("---\n- name\n- description\n---\nbody\n", "frontmatter", "mapping, got list"),
        ("---\nname: demo\n---\nbody\n", "description", "missing or empty"),
        ("---\nname: demo\ndescription: '   '\n---\nbody\n", "description", "missing or empty"),
        ("---\nname: demo\ndescription: 42\n---\nbody\n", "description", "missing or empty"),
    ],
    ids=["no-frontmatter", "unterminated", "bad-yaml", "list", "no-description", "blank-description", "int-description"],
)
def test_errors_name_file_and_field(tmp_path, content, field, words):
    folder = write_skill(tmp_path, raw=content.encode())
    error = load_error(folder)
    assert error.field == field
    assert error.path.endswith("SKILL.md")
    assert "demo" in error.path
    assert words in str(error)
    assert str(error).startswith(f"{folder / 'SKILL.md'}: {field}: ")


def test_non_utf8_is_an_encoding_error(tmp_path):
    folder = write_skill(tmp_path, raw=b"---\nname: demo\ndescription: caf\xe9\n---\nbody\n")
    error = load_error(folder)
    assert error.field == "encoding"
    assert error.path == str(folder / "SKILL.md")


def test_missing_skill_md(tmp_path):
    (tmp_path / "demo").mkdir()
    error = load_error(tmp_path / "demo")
    assert (error.field, error.path) == ("file", str(tmp_path / "demo" / "SKILL.md"))


def test_yaml_tags_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    frontmatter = (
        "name: demo\ndescription: d\n"
        f'x: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    folder = write_skill(tmp_path, frontmatter=frontmatter)
    error = load_error(folder)
    assert error.field == "frontmatter"
    assert not marker.exists()


# --- lenient deviations: warnings by default, errors in strict mode ---------------------------------


LONG = "x" * 1025


@pytest.mark.parametrize(
    "key, frontmatter, words",
    [
        ("demo", "name: demo\ndescription: d\nversion: 1.0\nauthor: me\n", ["author", "version"]),
        ("demo", "name: other\ndescription: d\n", ["other", "must match"]),
        ("demo", "name: Demo Skill\ndescription: d\n", ["lowercase"]),
        ("demo", f"name: demo\ndescription: {LONG}\n", ["1024"]),
        ("demo", "description: d\n", ["name"]),
    ],
    ids=["extra-fields", "name-mismatch", "title-case-name", "long-description", "no-name"],
)
def test_spec_deviations_warn_or_fail_strict(tmp_path, key, frontmatter, words):
    folder = write_skill(tmp_path, key=key, frontmatter=frontmatter)
    skill = load_skill(folder)
    assert skill.warnings, "expected a spec warning"
    joined = "\n".join(skill.warnings)
    for word in words:
        assert word in joined
    error = load_error(folder, strict=True)
    assert error.field == "spec"
    assert error.path == str(folder / "SKILL.md")
    for word in words:
        assert word in str(error)


def test_name_defaults_to_key_when_missing(tmp_path):
    folder = write_skill(tmp_path, frontmatter="description: d\n")
    assert load_skill(folder).name == "demo"


def test_byte_order_mark_warns_and_is_stripped(tmp_path):
    raw = "\ufeff---\nname: demo\ndescription: d\n---\nbody\n".encode()
    folder = write_skill(tmp_path, raw=raw)
    skill = load_skill(folder)
    assert any("byte order mark" in warning for warning in skill.warnings)
    assert skill.text.startswith("---")
    assert not skill.text.startswith("\ufeff")
    assert load_error(folder, strict=True).field == "spec"


def test_flow_style_list_parses(tmp_path):
    folder = write_skill(tmp_path, frontmatter="name: demo\ndescription: d\nallowed-tools: [Read, Write]\n")
    skill = load_skill(folder, strict=True)
    assert skill.warnings == []
    assert "allowed-tools: [Read, Write]" in skill.text


def test_missing_evals_warns_but_passes_strict(tmp_path):
    folder = write_skill(tmp_path, evals=None)
    skill = load_skill(folder)
    assert skill.evals == [] and skill.checks == []
    assert len(skill.warnings) == 1
    assert "evals.json" in skill.warnings[0] and "absent" in skill.warnings[0]
    strict = load_skill(folder, strict=True)
    assert strict.warnings == skill.warnings


# --- folder names --------------------------------------------------------------------------------


def test_empty_key_is_invalid():
    assert not is_valid_skill_key("")


@pytest.mark.parametrize("name", ["My Skill", "Foo", "a--b", "-a", "a-", "a_b", "a" * 65])
def test_bad_folder_names_are_refused(tmp_path, name):
    assert not is_valid_skill_key(name)
    folder = tmp_path / name
    with pytest.raises(SkillError) as info:
        check_skill_key(folder)
    assert info.value.field == "folder name"
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["a", "foo-bar-2", "7", "a" * 64])
def test_good_folder_names_pass(tmp_path, name):
    assert is_valid_skill_key(name)
    assert check_skill_key(tmp_path / name) == name


def test_load_skill_refuses_a_badly_named_folder(tmp_path):
    folder = write_skill(tmp_path, key="My-Skill", frontmatter="name: My-Skill\ndescription: d\n")
    error = load_error(folder)
    assert error.field == "folder name"
    assert "My-Skill" in str(error)


# --- evals.json ----------------------------------------------------------------------------------


def test_evals_invalid_json(tmp_path):
    folder = write_skill(tmp_path, evals="{not json")
    error = load_error(folder)
    assert error.path.endswith(os.path.join("evals", "evals.json"))
    assert error.field == "evals"
    assert "not valid JSON" in str(error)


@pytest.mark.parametrize(
    "evals, location, words",
    [
        ({"skill_name": "demo", "evals": [{"id": 1, "expected_output": "ok"}]}, "$.evals[0]", "prompt"),
        ({"skill_name": "demo", "evals": []}, "$.evals", ""),
        ({"evals": [{"id": 1, "prompt": "p", "expected_output": "ok"}]}, "$", "skill_name"),
        (
            {**GOOD_EVALS, "checks": [{"type": "glob", "pattern": "x"}]},
            "$.checks[0].type",
            "glob",
        ),
        (
            {**GOOD_EVALS, "checks": [{"type": "regex", "pattern": "x", "flags": "i"}]},
            "$.checks[0]",
            "flags",
        ),
    ],
    ids=["missing-prompt", "no-evals", "no-skill-name", "bad-check-type", "extra-check-key"],
)
def test_evals_schema_violation_names_json_path(tmp_path, evals, location, words):
    folder = write_skill(tmp_path, evals=evals)
    error = load_error(folder)
    assert error.path.endswith("evals.json")
    assert error.field.startswith("$")
    assert error.field == location
    assert words in str(error)


def test_evals_bad_regex_is_named(tmp_path):
    evals = {
        "skill_name": "demo",
        "evals": [{"id": 7, "prompt": "p", "expected_output": "ok", "checks": [{"type": "regex", "pattern": "(ab"}]}],
    }
    error = load_error(write_skill(tmp_path, evals=evals))
    assert error.path.endswith("evals.json")
    assert "id=7" in error.field
    assert "'(ab'" in str(error)


def test_evals_bad_skill_level_regex_is_named(tmp_path):
    evals = {**GOOD_EVALS, "checks": [{"type": "not_regex", "pattern": "[z-a]"}]}
    error = load_error(write_skill(tmp_path, evals=evals))
    assert error.field == "checks"
    assert "'[z-a]'" in str(error)


def test_contains_pattern_is_not_compiled_as_regex(tmp_path):
    evals = {**GOOD_EVALS, "checks": [{"type": "contains", "pattern": "(ab"}]}
    assert load_skill(write_skill(tmp_path, evals=evals)).checks[0]["pattern"] == "(ab"


# --- content hash --------------------------------------------------------------------------------


def test_sha256_follows_content_not_mtime(tmp_path):
    folder = write_skill(tmp_path)
    skill_md, evals_json = folder / "SKILL.md", folder / "evals" / "evals.json"
    first = skill_sha256(folder)
    assert len(first) == 64

    os.utime(skill_md, ns=(1_000_000_000, 1_000_000_000))
    os.utime(evals_json, ns=(1_000_000_000, 1_000_000_000))
    assert skill_sha256(folder) == first

    skill_md.write_text(skill_md.read_text() + "More.\n")
    second = skill_sha256(folder)
    assert second != first

    evals_json.write_text(json.dumps({**GOOD_EVALS, "checks": []}))
    third = skill_sha256(folder)
    assert third not in (first, second)

    evals_json.unlink()
    assert skill_sha256(folder) not in (first, second, third)


def test_crlf_line_endings_parse(tmp_path: Path) -> None:
    folder = tmp_path / "crlf"
    folder.mkdir()
    (folder / "SKILL.md").write_bytes(b"---\r\nname: crlf\r\ndescription: d\r\n---\r\nbody\r\n")
    skill = load_skill(folder)
    assert skill.description == "d" and skill.body == "body"


@pytest.mark.parametrize("first_line", ["----", "---x"])
def test_first_line_must_be_exactly_a_fence(tmp_path: Path, first_line: str) -> None:
    folder = tmp_path / "fence"
    folder.mkdir()
    (folder / "SKILL.md").write_text(f"{first_line}\nname: fence\ndescription: d\n---\nbody\n---\n")
    with pytest.raises(SkillError) as error:
        load_skill(folder)
    assert error.value.field == "frontmatter" and "missing" in str(error.value)


def test_non_string_field_names_are_an_error_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "SKILL.md").write_text("---\nname: odd\ndescription: d\n1: x\nyes: y\n---\nbody\n")
    with pytest.raises(SkillError) as error:
        load_skill(folder)
    assert error.value.field == "frontmatter" and "field names must be strings" in str(error.value)


# --- worked examples in the body ----------------------------------------------------------------


def pairs(skill) -> list[tuple[str | None, str]]:
    return [(example["request"], example["answer"]) for example in skill.examples]


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_skills_show_worked_examples_that_pass_their_checks(key):
    skill = load_skill(SKILLS_DIR / key)
    assert len(skill.examples) >= 2
    for example in skill.examples:
        assert example["request"] and failed_checks(skill.checks, example["answer"]) == []


def test_examples_end_at_the_next_example_or_section(tmp_path):
    body = ("# Demo\n\n## Examples\n\nInput: first request\n\nOutput:\nfirst answer\nsecond line\n\n"
            "**Input:** second request\n**Output:** second answer\n\n## Notes\n\nNot part of an answer.\n")
    skill = load_skill(write_skill(tmp_path, body=body, evals=None))
    assert pairs(skill) == [("first request", "first answer\nsecond line"), ("second request", "second answer")]
    assert [example["line"] for example in skill.examples] == [9, 15]  # lines in SKILL.md, frontmatter counted


def test_an_answer_that_is_headed_markdown_keeps_its_headings(tmp_path):
    body = "## Example\n\nInput: release 1.0\n\nOutput:\n## [1.0.0] - 2024-01-01\n\n### Added\n\n- Everything.\n"
    skill = load_skill(write_skill(tmp_path, body=body, evals=None))
    assert pairs(skill) == [("release 1.0", "## [1.0.0] - 2024-01-01\n\n### Added\n\n- Everything.")]


def test_an_example_that_fails_the_skills_checks_is_no_example(tmp_path):
    body = "## Examples\n\nInput: say it\n\nOutput: ok then\n\nInput: again\n\nOutput: fine\n"
    assert pairs(load_skill(write_skill(tmp_path, body=body))) == [("say it", "ok then")]  # the check: contains "ok"


def test_a_body_without_examples_has_none(tmp_path):
    assert load_skill(write_skill(tmp_path)).examples == []


# --- files an eval case gives the model ---------------------------------------------------------


def with_case_files(files: list[str]) -> dict:
    return {**GOOD_EVALS, "evals": [{**GOOD_EVALS["evals"][0], "files": files}]}


def test_an_eval_cases_files_are_read_and_hashed_with_the_skill(tmp_path):
    folder = write_skill(tmp_path, evals=with_case_files(["evals/files/app.py"]))
    (folder / "evals" / "files").mkdir()
    (folder / "evals" / "files" / "app.py").write_text("def add(a, b):\n    return a + b\n")
    skill = load_skill(folder)
    assert skill.evals[0]["file_texts"] == {"evals/files/app.py": "def add(a, b):\n    return a + b\n"}
    # The model gets the file with the prompt, under its path.
    from s2l.reports.evaluate import eval_prompts

    assert eval_prompts(skill, [])[0].request == (
        "Say ok.\n\nFile evals/files/app.py:\n```\ndef add(a, b):\n    return a + b\n```")
    before = skill_sha256(folder)
    (folder / "evals" / "files" / "app.py").write_text("def sub(a, b):\n    return a - b\n")
    assert skill_sha256(folder) != before  # editing a case's file is a skill edit


def test_a_missing_or_outside_case_file_names_evals_json_and_the_case(tmp_path):
    folder = write_skill(tmp_path, evals=with_case_files(["evals/files/absent.py"]))
    error = load_error(folder)
    assert str(error).startswith(f"{folder / 'evals' / 'evals.json'}: evals[id=1].files: 'evals/files/absent.py'")
    folder = write_skill(tmp_path, key="outside", evals=with_case_files(["../demo/SKILL.md"]))
    assert "outside the skill folder" in str(load_error(folder))
