"""Running one build stage: check what it reads, restore or build its outputs, record a manifest.

Every job first checks that the upstream outputs it reads are the ones its spec was planned from
(the upstream manifest's plan key) and still hold the bytes recorded there; anything else is a
stale plan and is refused. It then computes its **input key**, the sha256 of its stage, version and
settings plus the sha256 of every upstream output it reads (and any job-time fact that shapes the
output, such as the training precision). That key, not the plan key, files outputs in the store, so
an upstream job that reran and reproduced its outputs byte for byte leaves every downstream job to
restore in a second: early cutoff, which Snakemake alone does not do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l.engine.hashing import content_sha256, stat_stamp
from s2l.engine.pipeline import STAGES, manifest_path
from s2l.engine.specs import NOT_KEYED, read_spec, sha256_json, software_versions, upstream_stage
from s2l.engine.store import Store
from s2l.errors import UserError

# auto: restore when the input key is stored, else build and store; write: always build, and
# replace the entry (forced jobs); off: build, store nothing.
STORE_MODES = ("auto", "write", "off")
# Set by the workflow for its jobs: {"all": --forceall, "names": rules and files forced}.
FORCED_ENV = "S2L_FORCED"


class StaleInputError(UserError):
    """An input is not what the job's spec was planned from: the plan must be made again."""


@dataclass(frozen=True)
class StageRun:
    """Where one job's spec, outputs and manifest are, and how it uses the store."""

    spec_file: Path
    outputs: dict[str, Path]
    manifest: Path
    store_dir: Path | None = None
    store_mode: str = "auto"
    # Job-time facts that shape the outputs but are not in the spec (e.g. the training precision).
    facts: dict[str, Any] = field(default_factory=dict)


def current_sha256(output: dict[str, Any]) -> str:
    """The output's sha256 now: the recorded one while its stat stamp is unchanged, else re-hashed."""
    path = Path(output["path"])
    if not path.exists():
        return "<missing>"
    return output["sha256"] if stat_stamp(path) == output.get("stamp") else content_sha256(path)


def read_upstream(spec: dict[str, Any]) -> dict[str, dict[str, str]]:
    """sha256 per output of every upstream stage, after checking each against the plan and its bytes."""
    reads = {}
    for name, planned_key in spec.get("upstream", {}).items():
        stage, skill = upstream_stage(spec, name)
        manifest_file = manifest_path(stage, skill)
        rerun = f"rerun the build (snakemake) so {spec['stage']} reads what it was planned from"
        if not manifest_file.is_file():
            raise StaleInputError(f"{manifest_file}: missing, so the {stage} outputs are not known; {rerun}")
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        paths = ", ".join(output["path"] for output in manifest["outputs"].values())
        if manifest["key"] != planned_key:
            raise StaleInputError(
                f"{paths}: built for plan {manifest['key'][:12]} of {stage}, but this job was planned "
                f"for {planned_key[:12]}; {rerun}")
        for output in manifest["outputs"].values():
            if current_sha256(output) != output["sha256"]:
                raise StaleInputError(f"{output['path']}: changed since {stage} built it; {rerun}")
        reads[name] = {role: output["sha256"] for role, output in manifest["outputs"].items()
                       if role not in STAGES[stage].unkeyed_outputs}
    return reads


def input_key(spec: dict[str, Any], reads: dict[str, dict[str, str]], facts: dict[str, Any]) -> str:
    own = {name: value for name, value in spec.items() if name not in NOT_KEYED + ("upstream",)}
    return sha256_json({"spec": own, "reads": reads, "facts": facts})


def run_stage(run: StageRun, build: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Restore the outputs from the store when their input key is there; else build (and store) them.

    Either way a manifest records the plan key, the input key, what was read and a sha256 per
    output. Returns the manifest.
    """
    spec = read_spec(run.spec_file)
    stage = spec["stage"]
    reads = read_upstream(spec)
    key = input_key(spec, reads, run.facts)
    mode = effective_store_mode(stage, run.outputs, run.store_mode)
    store = Store(run.store_dir) if run.store_dir is not None and mode != "off" else None
    restored = store is not None and mode == "auto" and store.has(stage, key) and store.restore(
        stage, key, run.outputs)
    if restored:
        store.remember_plan(stage, spec["key"], key)
        print(f"{stage}: restored from the store, input key {key[:12]}")
    else:
        build(spec)
    manifest = {
        "stage": stage,
        "key": spec["key"],
        "input_key": key,
        "spec": spec,
        "reads": reads,
        "facts": run.facts,
        "outputs": {role: {"path": str(path), "sha256": content_sha256(path), "stamp": stat_stamp(path)}
                    for role, path in run.outputs.items()},
        "restored_from_store": restored,
        "software": software_versions(),
    }
    if store is not None and not restored:
        store.save(stage, key, run.outputs, manifest, replace=mode == "write")
    run.manifest.parent.mkdir(parents=True, exist_ok=True)
    run.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def effective_store_mode(stage: str, outputs: dict[str, Path], configured: str) -> str:
    """``write`` for a job the user forced, as the workflow recorded in ``FORCED_ENV``; else ``configured``.

    A forced job must build afresh: restoring what it was asked to replace would hand back the old
    outputs (and a code change would never show)."""
    forced = json.loads(os.environ.get(FORCED_ENV, "{}"))
    names = set(forced.get("names", ()))
    if configured == "auto" and (forced.get("all") or stage in names or {str(p) for p in outputs.values()} & names):
        return "write"
    return configured
