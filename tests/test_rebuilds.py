"""Content-hashed targets on the real workflow: minimal rebuilds, provenance, restore from the store.

One work directory with three skills is built once; the tests run in file order and each leaves it
fully built again, so the next one starts from an up-to-date build.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import ROOT, scheduled_jobs, snakemake

# Skills with short answers: a tiny teacher budget still yields training records for them.
SKILLS = ("commit-messages", "conventional-commits", "keep-a-changelog")
EDITED = SKILLS[1]
CHAIN = ("parse_skill", "synthesize", "dataset", "train", "evaluate")
STORED = ("synthesize", "dataset", "train", "evaluate")
TINY = {  # smaller still than tests/quick.yaml: this module builds three skills several times
    "generation": {"train_examples": 6, "eval_examples": 2},
    "eval": {"max_new_tokens": 12, "batch_size": 16},
    "training": {"max_steps": 1},
}

pytestmark = pytest.mark.workflow


def jobs_for(rules: tuple[str, ...], skills: tuple[str, ...] = SKILLS) -> set[tuple[str, str | None]]:
    return {(rule, skill) for rule in rules for skill in skills} | {("benchmark", None)}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def override(workdir: Path, name: str, settings: dict) -> Path:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def status(workdir: Path, *configfiles: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """``s2l status`` as {(skill, stage): (state, why)}."""
    command = [sys.executable, "-m", "s2l", "status", "-d", str(workdir), "--configfile",
               str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml"), *map(str, configfiles)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=3) + [""] for line in output.splitlines()]
    return {(row[0], row[1]): (row[2], row[3]) for row in rows}


def build(workdir: Path, *configfiles: Path) -> subprocess.CompletedProcess:
    result = snakemake(workdir, configfiles=configfiles)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def dry_run(workdir: Path, *configfiles: Path) -> set[tuple[str, str | None]]:
    result = snakemake(workdir, "-n", configfiles=configfiles)
    assert result.returncode == 0, result.stderr[-3000:]
    return scheduled_jobs(result.stdout)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("rebuilds")
    for key in SKILLS[1:]:
        shutil.copytree(ROOT / "skills" / key, root / "skills" / key)
    shutil.copytree(ROOT / "skills" / "conventional-commits", root / "skills" / SKILLS[0])
    renamed = root / "skills" / SKILLS[0] / "SKILL.md"
    renamed.write_text(renamed.read_text().replace("name: conventional-commits", f"name: {SKILLS[0]}"))
    settings = {"skills_dir": str(root / "skills"), "cache_dir": str(root / "store"),
                "base_model": {"source": str(base_model_dir), "id": "SmolLM2-135M-Instruct"}, **TINY}
    (root / "test.yaml").write_text(yaml.safe_dump(settings))
    build(root)
    return root


def test_every_artefact_has_a_manifest_with_its_content_key(workdir: Path) -> None:
    build_dir = workdir / "build"
    for skill in SKILLS:
        for stage in ("synthetic", "dataset", "adapter", "eval"):
            manifest = json.loads((build_dir / "manifests" / skill / f"{stage}.json").read_text())
            spec = json.loads((build_dir / "specs" / skill / f"{stage}.json").read_text())
            assert manifest["key"] == spec["key"] and len(manifest["key"]) == 64
            assert manifest["spec"]["config"] == spec["config"]
            for output in manifest["outputs"].values():
                assert (workdir / output["path"]).exists() and len(output["sha256"]) == 64
        adapter_key = json.loads((build_dir / "specs" / skill / "adapter.json").read_text())["key"]
        assert adapter_key in (build_dir / "adapters" / skill / "README.md").read_text()
    model = json.loads((build_dir / "specs" / "model.json").read_text())
    assert len(model["weights_sha256"]) == 64
    assert json.loads((build_dir / "manifests" / "benchmark.json").read_text())["key"]


def test_touching_every_skill_schedules_nothing(workdir: Path) -> None:
    for path in (workdir / "skills").rglob("*"):
        path.touch()
    # A checkout rewrites files with the same content: no change either.
    skill_md = workdir / "skills" / SKILLS[0] / "SKILL.md"
    skill_md.write_bytes(skill_md.read_bytes())
    assert dry_run(workdir) == set()


def test_lora_rank_reruns_training_eval_and_aggregate_only(workdir: Path) -> None:
    rank8 = override(workdir, "rank8", {"lora": {"r": 8}})
    assert dry_run(workdir, rank8) == jobs_for(("train", "evaluate"))
    explained = status(workdir, rank8)
    assert explained[(SKILLS[0], "synthetic")] == ("up to date", "")
    assert explained[(SKILLS[0], "adapter")] == ("stale", "config.lora.r: 16 -> 8")
    assert explained[(SKILLS[0], "eval")] == ("stale", "adapter changed")
    trained = build(workdir, rank8)
    assert trained.stdout.count("adapter in build/adapters") == len(SKILLS)
    # Back to rank 16: the rank-16 adapters come back from the store, no training step runs.
    restored = build(workdir)
    assert restored.stdout.count("adapter: restored from the store") == len(SKILLS)
    assert "adapter in build/adapters" not in restored.stdout


def test_generation_setting_reruns_from_generation_on(workdir: Path) -> None:
    hotter = override(workdir, "hotter", {"generation": {"generator": {"temperature": 1.0}}})
    assert dry_run(workdir, hotter) == jobs_for(STORED)
    # Planned but never built: with the old setting back, nothing needs doing.
    assert dry_run(workdir) == set()


def test_edit_build_revert_build_restores_without_generation_or_training(workdir: Path) -> None:
    adapter = workdir / "build" / "adapters" / EDITED / "adapter_model.safetensors"
    original_adapter = file_sha256(adapter)
    skill_md = workdir / "skills" / EDITED / "SKILL.md"
    original = skill_md.read_text()
    skill_md.write_text(original + "\nKeep the summary line under 60 characters.\n")
    assert dry_run(workdir) == jobs_for(CHAIN, (EDITED,))
    edited = build(workdir)
    assert "restored from the store" not in edited.stdout
    assert file_sha256(adapter) != original_adapter

    skill_md.write_text(original)
    state, why = status(workdir)[(EDITED, "adapter")]
    assert state == "cached" and why.startswith("restorable from the store")
    reverted = build(workdir)
    assert reverted.stdout.count("restored from the store") == len(STORED) + 1
    output = reverted.stdout + reverted.stderr
    assert f"{EDITED}: requests" not in output and "adapter in build/adapters" not in output
    assert file_sha256(adapter) == original_adapter


def test_losing_snakemake_metadata_retrains_nothing(workdir: Path) -> None:
    shutil.rmtree(workdir / ".snakemake")
    assert dry_run(workdir) == set()
