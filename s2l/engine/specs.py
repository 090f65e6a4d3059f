"""Stage specs and plan keys: what each stage reads, written where Snakemake can see it change.

At parse time the workflow writes ``build/specs/...json`` per stage: the stage's version, the
config keys that shape its output, the skill's content hash (``parse_skill``), the base model's
content hash (``prepare_model``) and the plan keys of the stages whose outputs it reads. The spec's
own **plan key** is the sha256 of all that. Settings that only decide whether a stage passes (like
``strict``, or the minimum record counts) sit under ``checks``: they rerun the stage when changed
but are left out of its key, so toggling them rebuilds nothing downstream.

A spec file is rewritten only when its content changes, so its mtime moves only on a real change:
touching or re-checking out a SKILL.md reruns nothing, editing it reruns that skill's chain, and a
config change reruns only the stages whose specs changed. Each stage reads its settings back from
its spec, so the spec is also the stage's provenance record.

The plan key says what a job is expected to read; the job itself computes an **input key** from
the bytes it actually reads (s2l/engine/runner.py), which is what the store files outputs under.

What each stage's spec holds is declared once, in s2l/engine/pipeline.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import uuid
from pathlib import Path
from typing import Any

from s2l.engine.config import ROLE_PATHS
from s2l.engine.pipeline import BUILD_STAGES, JUDGE_KEYS, SKILL_STAGES, STAGES, spec_path
from s2l.skills.skill import has_skill_checks

# How a role reaches its endpoint (``<role path>.connection``: key variable, timeout,
# concurrency, retries, price) changes no answer: the job reads it from ``connections``, no key holds it.
NOT_KEYED = ("key", "inputs", "checks", "connections")


def config_value(config: dict[str, Any], dotted: str) -> Any:
    value = config
    for name in dotted.split("."):
        value = value[name]
    return value


def config_slice(config: dict[str, Any], dotted_keys: tuple[str, ...]) -> dict[str, Any]:
    """``{"dataset": {"max_seq_len": 512}}`` for ``("dataset.max_seq_len",)``: nested as in the config."""
    sliced: dict[str, Any] = {}
    for dotted in dotted_keys:
        *parents, leaf = dotted.split(".")
        target = sliced
        for name in parents:
            target = target.setdefault(name, {})
        target[leaf] = config_value(config, dotted)
    return sliced


def stage_spec(stage: str, config: dict[str, Any], skill: str | None = None, also: tuple[str, ...] = ()
               ) -> dict[str, Any]:
    """A stage's spec: its version and the config keys that shape it (and ``also`` these)."""
    declared = STAGES[stage]
    spec: dict[str, Any] = {
        "stage": stage,
        "version": declared.version,
        "config": copy.deepcopy(config_slice(config, declared.config_keys + also)),
    }
    connections = {}
    for name, dotted in ROLE_PATHS.items():
        section, role = dotted.split(".")
        settings = spec["config"].get(section, {}).get(role)
        if isinstance(settings, dict) and "connection" in settings:
            connections[name] = settings.pop("connection")
    if connections:
        spec["connections"] = connections
    if declared.check_keys:
        spec["checks"] = config_slice(config, declared.check_keys)
    if skill is not None:
        spec["skill"] = {"key": skill}
    return spec


def sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def plan_key(spec: dict[str, Any]) -> str:
    """sha256 of what a stage's output depends on. ``inputs`` (where files are) is not content;
    ``checks`` decide only whether the stage passes."""
    return sha256_json({name: value for name, value in spec.items() if name not in NOT_KEYED})


def keyed(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "key": plan_key(spec)}


def wrong_adapter_skill(skill: str, skills: list[str]) -> str | None:
    """The control adapter for ``skill``: the next skill's in sorted order (the first for the last);
    None when there is no other skill."""
    ordered = sorted(skills)
    return None if len(ordered) < 2 else ordered[(ordered.index(skill) + 1) % len(ordered)]


def plan_specs(
    config: dict[str, Any], skills: dict[str, tuple[Path, str]], model_sha256: str
) -> dict[Path, dict[str, Any]]:
    """Every stage spec of the build, keyed; ``skills`` maps a skill key to (folder, content sha256)."""
    model = keyed({**stage_spec("prepare_model", config), "model_sha256": model_sha256})
    specs = {spec_path("prepare_model"): model}
    keys: dict[str, dict[str, str]] = {}
    for skill, (folder, sha256) in skills.items():
        own = keys[skill] = {"prepare_model": model["key"]}
        for stage in SKILL_STAGES:
            # The judge grades the teacher's answers only for a skill without checks: only its key holds it.
            judged = stage == "synthesize" and not has_skill_checks(folder)
            spec = stage_spec(stage, config, skill, JUDGE_KEYS if judged else ())
            spec["upstream"] = {name: own[name] for name in STAGES[stage].upstream}
            if stage == "parse_skill":
                spec["skill"]["sha256"] = sha256
                spec["inputs"] = {"dir": str(folder)}
            spec = keyed(spec)
            own[stage] = spec["key"]
            specs[spec_path(stage, skill)] = spec
    if config["merge"]["enabled"]:
        for skill, own in keys.items():
            specs[spec_path("merge", skill)] = keyed({**stage_spec("merge", config, skill), "upstream": {
                name: own[name] for name in STAGES["merge"].upstream}})
    specs[spec_path("prepare_serving")] = keyed({**stage_spec("prepare_serving", config), "upstream": {
        "prepare_model": model["key"], **{f"{stage}/{skill}": own[stage] for skill, own in keys.items()
                                          for stage in STAGES["prepare_serving"].other_skills}}})
    aggregated = {f"evaluate/{skill}": own["evaluate"] for skill, own in keys.items()}
    if config["evaluate"]["controls"]:
        shared = keyed({**stage_spec("train_shared", config), "upstream": {
            "prepare_model": model["key"], **{f"dataset/{skill}": own["dataset"] for skill, own in keys.items()}}})
        specs[spec_path("train_shared")] = shared
        for skill, own in keys.items():
            spec = stage_spec("evaluate_controls", config, skill)
            wrong = wrong_adapter_skill(skill, list(keys))
            spec["controls"] = {"wrong_adapter": wrong}
            spec["upstream"] = {name: {**own, "train_shared": shared["key"]}[name]
                                for name in STAGES["evaluate_controls"].upstream}
            if wrong is not None:
                spec["upstream"][f"train/{wrong}"] = keys[wrong]["train"]
            spec = keyed(spec)
            specs[spec_path("evaluate_controls", skill)] = spec
            aggregated[f"evaluate_controls/{skill}"] = spec["key"]
    specs[spec_path("benchmark")] = keyed({**stage_spec("benchmark", config), "upstream": aggregated})
    return specs


def upstream_stage(spec: dict[str, Any], name: str) -> tuple[str, str | None]:
    """(stage, skill) of an entry in ``spec["upstream"]``: ``stage/skill`` names another skill's output."""
    if "/" in name:
        stage, skill = name.split("/", 1)
        return stage, skill
    return name, None if name in BUILD_STAGES else spec["skill"]["key"]


def _brief(value: Any) -> str:
    """A sha256 shortened to 12 hex digits; anything else as JSON."""
    return f"{value[:12]}…" if isinstance(value, str) and len(value) == 64 else json.dumps(value)


def diff_specs(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two specs, e.g. ``config.lora.r: 16 -> 8``."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if name in ("key", "inputs"):
            continue
        path, before, after = f"{prefix}{name}", old.get(name), new.get(name)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += diff_specs(before, after, f"{path}.")
        elif before != after:
            changes.append(f"{path}: {_brief(before)} -> {_brief(after)}")
    return changes


def write_if_changed(path: Path, spec: dict[str, Any]) -> bool:
    """Write ``spec`` as JSON unless the file already holds exactly that; True if written."""
    text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary file per writer: cluster jobs each parse the workflow again, possibly at once.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return True


def read_spec(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("s2l", "torch", "transformers", "peft"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions
