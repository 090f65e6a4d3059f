"""Stage specs: what each stage reads, written where Snakemake can see when it changes.

At parse time the workflow writes ``build/specs/...json`` per stage: the stage's version, the
config keys it reads and, for the skill stage, the skill's content hash. A spec file is rewritten
only when its content changes, so its mtime moves only on a real change: touching or re-checking
out a SKILL.md reruns nothing, editing it reruns that skill's chain, and a config change reruns
only the stages whose keys changed. Each stage reads its settings back from its spec, so the spec
is also the stage's provenance record.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

# Bump a stage's version when its code changes what it produces; that reruns it for every skill.
STAGE_VERSIONS = {"model": 1, "skill": 1, "synthetic": 1, "dataset": 1, "adapter": 1, "eval": 1}
STAGE_CONFIG_KEYS = {
    "model": ("base_model",),
    "skill": ("strict",),
    "synthetic": ("generation", "seed"),
    "dataset": ("dataset",),
    "adapter": ("lora", "training", "seed"),
    "eval": ("eval", "seed"),
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
