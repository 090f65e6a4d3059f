"""``s2l status``: per skill and stage, up to date / stale (and why) / not built / restorable from
the store, from the same plan keys the build uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2l.engine.pipeline import STAGES, manifest_path, spec_path
from s2l.engine.plan import BuildPlan
from s2l.engine.specs import diff_specs
from s2l.engine.store import Store


def why_stale(built: dict[str, Any], expected: dict[str, Any]) -> str:
    changes = diff_specs(built, expected)
    upstream = [c.split(":")[0].removeprefix("upstream.") for c in changes if c.startswith("upstream.")]
    own = [c for c in changes if not c.startswith("upstream.")]
    reasons = own + [f"{', '.join(upstream)} changed"] if upstream else own
    return "; ".join(reasons) or "rebuilt since (key differs)"


def target_status(stage: str, skill: str | None, plan: BuildPlan, workdir: Path, store: Store) -> tuple[str, str]:
    expected = plan.specs[spec_path(stage, skill)]
    manifest_file = workdir / manifest_path(stage, skill)
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        outputs_exist = all((workdir / o["path"]).exists() for o in manifest["outputs"].values())
        if manifest["spec"] == expected and outputs_exist:
            return "up to date", ""
        reason = why_stale(manifest["spec"], expected) if outputs_exist else "output missing"
    else:
        reason = "never built"
    if store.has_plan(stage, expected["key"]):
        return "cached", f"restorable from the store ({reason})"
    return ("not built", "") if reason == "never built" else ("stale", reason)


def status_table(plan: BuildPlan, workdir: Path, store: Store) -> list[tuple[str, str, str, str]]:
    """(skill, stage, state, why) rows: the base model first, then each skill's stages, then the shared
    adapter and the benchmark, the build's own under skill "*"."""
    rows = [("*", "prepare_model", *target_status("prepare_model", None, plan, workdir, store))]
    rows += [(skill, stage, *target_status(stage, skill, plan, workdir, store))
             for skill in plan.skills for stage, declared in STAGES.items()
             if declared.per_skill and spec_path(stage, skill) in plan.specs]
    rows += [("*", stage, *target_status(stage, None, plan, workdir, store))
             for stage, declared in STAGES.items()
             if not declared.per_skill and stage != "prepare_model" and spec_path(stage) in plan.specs]
    return rows
