"""Skill parsing and validation: lenient by default, strict on request.

A skill is a folder ``<key>/SKILL.md`` (YAML frontmatter + Markdown body) with an optional
``evals/evals.json``. The folder name is the build key. The frontmatter is read with
``yaml.safe_load`` so no YAML tag is ever executed; the Agent Skills spec itself is checked by the
``skills-ref`` package, and its findings are warnings unless ``strict`` is on. Files bundled with a
skill (scripts/, references/, assets/) are never read or executed here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from skills_ref.validator import validate_metadata

from s2l.errors import UserError
from s2l.schemas import SchemaError, validate
from s2l.skills.examples import read_demonstrations

SKILL_FILE = "SKILL.md"
EVALS_FILE = Path("evals") / "evals.json"
SKILL_KEY_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
MAX_SKILL_KEY_LENGTH = 64
_FRONTMATTER_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_BOM = "\ufeff"


class SkillError(UserError):
    """A skill that cannot be built; names the file and the field at fault."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: {field}: {message}")


@dataclass(frozen=True)
class Skill:
    """A parsed skill, as every later stage sees it."""

    key: str
    path: str
    name: str
    description: str
    text: str
    body: str
    sha256: str
    warnings: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    # The skill's demonstrations that pass its checks (s2l/skills/examples.py): request (None when the skill
    # shows only the answer), answer, line in SKILL.md and how it was shown; and what it marks as wrong.
    examples: list[dict[str, Any]] = field(default_factory=list)
    counter_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def worked_pairs(self) -> list[dict[str, Any]]:
        """The demonstrations that show their request: what a teacher can be shown as earlier turns and
        a generator can imitate."""
        return [example for example in self.examples if example["request"]]

    @property
    def identity(self) -> dict[str, str]:
        """How records, reports and model cards name the skill they come from."""
        return {"key": self.key, "name": self.name, "sha256": self.sha256}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Skill:
        return cls(**data)


def is_valid_skill_key(key: str) -> bool:
    return len(key) <= MAX_SKILL_KEY_LENGTH and re.fullmatch(SKILL_KEY_PATTERN, key) is not None


def check_skill_key(folder: Path) -> str:
    """Return the folder name as the build key, or raise naming the folder."""
    if not is_valid_skill_key(folder.name):
        raise SkillError(
            folder,
            "folder name",
            f"{folder.name!r} is not a valid skill key: use lowercase letters, digits and single "
            f"hyphens ({SKILL_KEY_PATTERN}), at most {MAX_SKILL_KEY_LENGTH} characters",
        )
    return folder.name


def listed_files(folder: Path) -> list[str]:
    """The ``files`` evals.json cases list (relative to the skill folder), read leniently: the parse
    stage reports a malformed evals.json, this only decides what the content hash covers."""
    try:
        cases = json.loads((folder / EVALS_FILE).read_text(encoding="utf-8")).get("evals", [])
        return sorted({name for case in cases for name in case.get("files", []) if isinstance(name, str)})
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def has_skill_checks(folder: Path) -> bool:
    """Whether evals.json holds skill-level checks, read leniently (the parse stage reports a malformed
    evals.json): the plan keys a skill's generation on the judge only when it has none."""
    try:
        return bool(json.loads((folder / EVALS_FILE).read_text(encoding="utf-8")).get("checks"))
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def skill_sha256(folder: Path) -> str:
    """Content hash of everything the pipeline reads from a skill: SKILL.md, evals.json and the files
    its cases list."""
    digest = hashlib.sha256()
    for relative in (Path(SKILL_FILE), EVALS_FILE, *map(Path, listed_files(folder))):
        path = folder / relative
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<absent>")
        digest.update(b"\0")
    return digest.hexdigest()


def split_frontmatter(text: str, path: Path) -> tuple[str, str]:
    """Split SKILL.md text into (frontmatter YAML, body)."""
    fences = list(_FRONTMATTER_FENCE.finditer(text))
    if not fences or fences[0].start() != 0:
        raise SkillError(path, "frontmatter", "missing: the file must start with a '---' line")
    if len(fences) < 2:
        raise SkillError(path, "frontmatter", "not terminated: no closing '---' line")
    return text[fences[0].end() : fences[1].start()], text[fences[1].end() :].strip()


def parse_frontmatter(yaml_text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise SkillError(path, "frontmatter", f"unparseable YAML: {detail}") from error
    if not isinstance(data, dict):
        raise SkillError(path, "frontmatter", f"must be a YAML mapping, got {type(data).__name__}")
    odd_keys = [key for key in data if not isinstance(key, str)]
    if odd_keys:
        raise SkillError(path, "frontmatter", f"field names must be strings, got {odd_keys!r}")
    return data


def load_evals(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Return (skill-level checks, eval cases, warnings) from evals/evals.json."""
    path = folder / EVALS_FILE
    if not path.is_file():
        return [], [], [f"{path}: absent, so check pass rates cannot be scored"]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SkillError(path, "evals", f"not valid JSON: {error}") from error
    try:
        validate(data, "evals.schema.json")
    except SchemaError as error:
        raise SkillError(path, error.location, error.message) from error
    for case in data["evals"]:
        for check in case.get("checks", []):
            _compile_check(check, path, f"evals[id={case['id']}].checks")
        if case.get("files"):
            case["file_texts"] = {name: _read_case_file(folder, name, path, f"evals[id={case['id']}].files")
                                  for name in case["files"]}
    for check in data.get("checks", []):
        _compile_check(check, path, "checks")
    return data.get("checks", []), data["evals"], []


def _read_case_file(folder: Path, name: str, evals_path: Path, where: str) -> str:
    """A file an eval case gives the model, as the skill-creator does: a path inside the skill folder."""
    file = (folder / name).resolve()
    if not file.is_relative_to(folder.resolve()):
        raise SkillError(evals_path, where, f"{name!r} is outside the skill folder")
    if not file.is_file():
        raise SkillError(evals_path, where, f"{name!r}: no such file in {folder}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SkillError(evals_path, where, f"{name!r}: not UTF-8 text ({error})") from error


def _compile_check(check: dict[str, Any], path: Path, where: str) -> None:
    if check["type"] in ("regex", "not_regex"):
        try:
            re.compile(check["pattern"])
        except re.error as error:
            raise SkillError(path, where, f"bad regex {check['pattern']!r}: {error}") from error


def load_skill(folder: Path, strict: bool = False) -> Skill:
    """Parse and validate one skill folder.

    Raises SkillError for what stops a build (bad folder name, missing, unterminated or
    unparseable frontmatter, missing or empty description, invalid evals.json) and, when
    ``strict`` is on, for any deviation from the Agent Skills spec.
    """
    key = check_skill_key(folder)
    path = folder / SKILL_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        dangling = path.is_symlink()
        raise SkillError(path, "file", f"a symlink to {os.readlink(path)}, which does not exist" if dangling
                         else "not found") from error
    except OSError as error:
        raise SkillError(path, "file", f"cannot read it ({error.strerror})") from error
    try:
        # Windows line endings must not hide the frontmatter fences.
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise SkillError(path, "encoding", f"not UTF-8: {error}") from error

    warnings: list[str] = []
    if text.startswith(_BOM):
        warnings.append("file starts with a UTF-8 byte order mark")
        text = text[len(_BOM) :]
    frontmatter_yaml, body = split_frontmatter(text, path)
    metadata = parse_frontmatter(frontmatter_yaml, path)

    description = metadata.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SkillError(path, "description", "missing or empty; the spec requires a description")

    warnings += validate_metadata(metadata, folder)
    if strict and warnings:
        raise SkillError(path, "spec", "strict mode refuses deviations: " + "; ".join(warnings))
    checks, evals, eval_warnings = load_evals(folder)

    name = metadata.get("name")
    demonstrations, counter_examples = read_demonstrations(body, checks, offset=text[: text.index(body)].count("\n")
                                                           if body else 0)
    return Skill(
        key=key,
        path=str(path),
        name=name if isinstance(name, str) and name.strip() else key,
        description=description.strip(),
        text=text,
        body=body,
        sha256=skill_sha256(folder),
        warnings=warnings + eval_warnings,
        checks=checks,
        evals=evals,
        examples=[example.to_json() for example in demonstrations],
        counter_examples=[example.to_json() for example in counter_examples],
    )


def read_parsed_skill(path: Path) -> Skill:
    """Read the parsed skill written by the parse stage (build/skills/<key>.json)."""
    return Skill.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
