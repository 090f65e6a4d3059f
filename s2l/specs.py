"""Stage specs and content keys: what each stage reads, written where Snakemake can see it change.

At parse time the workflow writes ``build/specs/...json`` per stage: the stage's version, the
config keys it reads, the skill's content hash (skill stage), the base model's weights hash (model
stage) and the content keys of the stages it reads from. The spec's own content key is the sha256
of all that, so it names the exact content an artefact is built from; the store (s2l/store.py)
files outputs under it.

A spec file is rewritten only when its content changes, so its mtime moves only on a real change:
touching or re-checking out a SKILL.md reruns nothing, editing it reruns that skill's chain, and a
config change reruns only the stages whose keys changed. Each stage reads its settings back from
its spec, so the spec is also the stage's provenance record.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

# Bump a stage's version when its code changes what it produces; that reruns it for every skill.
STAGE_VERSIONS = {"model": 1, "skill": 1, "synthetic": 1, "dataset": 1, "adapter": 1, "eval": 1, "benchmark": 1}
SKILL_STAGES = ("skill", "synthetic", "dataset", "adapter", "eval")
# The stages whose outputs a stage reads; their keys are part of its key.
UPSTREAM = {"skill": (), "synthetic": ("skill", "model"), "dataset": ("synthetic",), "adapter": ("dataset",),
            "eval": ("adapter",)}
SPECS_DIR = Path("build/specs")
STAGE_CONFIG_KEYS = {
    "model": ("base_model",),
    "skill": ("strict",),
    "synthetic": ("generation", "seed"),
    "dataset": ("dataset",),
    "adapter": ("lora", "training", "seed"),
    "eval": ("eval", "seed"),
    "benchmark": (),
}


def stage_spec(stage: str, config: dict[str, Any], skill: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "stage": stage,
        "version": STAGE_VERSIONS[stage],
        "config": {key: config[key] for key in STAGE_CONFIG_KEYS[stage]},
    }
    if skill is not None:
        spec["skill"] = skill
    return spec


def content_key(spec: dict[str, Any]) -> str:
    """sha256 of what a stage's output depends on. ``inputs`` (where files are) is not content."""
    keyed = {name: value for name, value in spec.items() if name not in ("key", "inputs")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()


def keyed(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "key": content_key(spec)}


def spec_path(stage: str, skill: str | None = None) -> Path:
    return SPECS_DIR / f"{stage}.json" if skill is None else SPECS_DIR / skill / f"{stage}.json"


def plan_specs(
    config: dict[str, Any], skills: dict[str, tuple[Path, str]], weights_sha256: str
) -> dict[Path, dict[str, Any]]:
    """Every stage spec of the build, keyed; ``skills`` maps a skill key to (folder, content sha256)."""
    model = keyed({**stage_spec("model", config), "weights_sha256": weights_sha256})
    specs = {spec_path("model"): model}
    eval_keys = {}
    for skill, (folder, sha256) in skills.items():
        keys = {"model": model["key"]}
        for stage in SKILL_STAGES:
            spec = stage_spec(stage, config, {"key": skill, "sha256": sha256} if stage == "skill" else None)
            spec["upstream"] = {name: keys[name] for name in UPSTREAM[stage]}
            if stage == "skill":
                spec["inputs"] = {"dir": str(folder)}
            spec = keyed(spec)
            keys[stage] = spec["key"]
            specs[spec_path(stage, skill)] = spec
        eval_keys[skill] = keys["eval"]
    specs[spec_path("benchmark")] = keyed({**stage_spec("benchmark", config), "upstream": eval_keys})
    return specs


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
    temporary = path.with_suffix(".tmp")
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
