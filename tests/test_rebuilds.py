"""Content-hashed targets on the real workflow: minimal rebuilds, provenance, restore from the store,
forced rebuilds, early cutoff, refusal of stale inputs, a store that is verified on restore.

One work directory with two skills is built once; each test leaves it fully built again, so any
other starts from an up-to-date build, in any order. The base model source is a copy
of the session's prepared model (hard links, so a file is replaced, never edited in place).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import ROOT, scheduled_jobs, snakemake

from s2l.schemas import validate

# Skills with short answers: a tiny teacher budget still yields training records for them. Two are
# enough to see that one skill's change leaves the other alone.
SKILLS = ("commit-messages", "conventional-commits")
EDITED = SKILLS[1]
CHAIN = ("parse_skill", "synthesize", "dataset", "train", "evaluate")
STORED = ("synthesize", "dataset", "train", "evaluate")
CHAT_TEMPLATE = "chat_template.jinja"
TINY = {  # smaller still than tests/quick.yaml: this module builds two skills several times, and
    # tests what is rebuilt, not what is learnt, so one answer per request, kept if it ends its turn.
    "synthesize": {"train_examples": 6, "eval_examples": 2, "teacher_samples": 1, "filter_by_checks": False},
    # The controls tie every skill's evaluation to the others' builds; test_workflow covers them.
    "evaluate": {"max_new_tokens": 12, "batch_size": 16, "samples": 1, "controls": False},
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


def manifest(workdir: Path, skill: str, stage: str) -> dict:
    return json.loads((workdir / "build" / "manifests" / skill / f"{stage}.json").read_text())


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a new file at ``path``: the old one may be a hard link to a shared file."""
    path.unlink()
    path.write_text(text)


def s2l(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2l", *args], cwd=workdir, capture_output=True, text=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("rebuilds")
    shutil.copytree(base_model_dir, root / "model", copy_function=os.link)
    for key in SKILLS[1:]:
        shutil.copytree(ROOT / "skills" / key, root / "skills" / key)
    shutil.copytree(ROOT / "skills" / "conventional-commits", root / "skills" / SKILLS[0])
    renamed = root / "skills" / SKILLS[0] / "SKILL.md"
    renamed.write_text(renamed.read_text().replace("name: conventional-commits", f"name: {SKILLS[0]}"))
    settings = {"skills_dir": str(root / "skills"), "store_dir": str(root / "store"),
                "base_model": {"source": str(root / "model"), "id": "SmolLM2-135M-Instruct"}, **TINY}
    (root / "test.yaml").write_text(yaml.safe_dump(settings))
    build(root)
    return root


def test_every_artefact_has_a_manifest_with_its_keys(workdir: Path) -> None:
    build_dir = workdir / "build"
    for skill in SKILLS:
        for stage in STORED:
            built = manifest(workdir, skill, stage)
            spec = json.loads((build_dir / "specs" / skill / f"{stage}.json").read_text())
            assert built["key"] == spec["key"] and built["spec"] == spec
            assert len(built["input_key"]) == 64 and built["input_key"] != built["key"]
            for output in built["outputs"].values():
                path = workdir / output["path"]
                assert path.exists() and len(output["sha256"]) == 64
                if path.is_file():
                    assert output["sha256"] == file_sha256(path)
        # What training read: the dataset's bytes, as the dataset's own manifest recorded them.
        dataset_records = manifest(workdir, skill, "dataset")["outputs"]["records.jsonl"]["sha256"]
        assert manifest(workdir, skill, "train")["reads"]["dataset"]["records.jsonl"] == dataset_records
        assert manifest(workdir, skill, "train")["facts"] == {"precision": "float32 LoRA on cpu"}
        # A model folder source: the reference engine writes the data, and it validates as the llama.cpp
        # engine's does (tests/test_engine_workflow.py, tests/test_workflow.py).
        usage = json.loads((build_dir / "synthetic" / f"{skill}.usage.json").read_text())
        assert {usage[role]["engine"] for role in ("generator", "teacher")} == {"transformers"}
        for record in map(json.loads, (build_dir / "datasets" / f"{skill}.jsonl").read_text().splitlines()):
            validate(record, "dataset_record.schema.json")
        adapter_key = json.loads((build_dir / "specs" / skill / "train.json").read_text())["key"]
        assert adapter_key in (build_dir / "adapters" / skill / "README.md").read_text()
    model = json.loads((build_dir / "specs" / "prepare_model.json").read_text())
    assert len(model["model_sha256"]) == 64
    assert json.loads((build_dir / "manifests" / "benchmark.json").read_text())["key"]


# The README's "Using the workflow" commands that rebuild on purpose, and the tests that run them.
REBUILDING = {"--configfile tests/quick.yaml": "every workflow test builds with it",
              "--config strict=true": "test_toggling_strict_reruns_only_parsing",
              "--forcerun train": "test_forcerun_train_retrains_and_refreshes_the_store"}


def readme_commands() -> list[str]:
    """The commands of the README's "Using the workflow" block, without their comments."""
    section = (ROOT / "README.md").read_text().split("## Using the workflow", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip() and not line[0].isspace()]


def test_every_readme_command_works_on_a_finished_build(workdir: Path) -> None:
    commands = [c for c in readme_commands() if not any(flag in c for flag in REBUILDING)]
    assert len(commands) == len(readme_commands()) - len(REBUILDING)
    configfiles = f"--configfile {ROOT / 'tests' / 'quick.yaml'} {workdir / 'test.yaml'}"
    first_lines = {}
    for command in commands:
        program, _, rest = command.partition(" ")
        if program == "snakemake":
            rest, pipe, after = rest.partition(" | ")
            line = f"{sys.executable} -m snakemake -s {ROOT / 'Snakefile'} {rest} {configfiles} {pipe}{after}"
        else:
            assert program == "s2l", command
            line = f"{sys.executable} -m s2l {rest}" + (f" {configfiles}" if rest.split()[0] != "check-adapter" else "")
        ran = subprocess.run(line, shell=True, cwd=workdir, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, f"{command}\n{ran.stderr[-3000:]}"
        first_lines[command] = (ran.stdout or ran.stderr).splitlines()[0] if (ran.stdout or ran.stderr) else ""
    assert "<svg" in (workdir / "dag.svg").read_text()
    assert (workdir / "build" / "report.html").stat().st_size > 0
    assert first_lines["s2l check-skill skills/*"] == f"ok: skills/{SKILLS[0]} (8 evals, 0 warnings)"
    assert first_lines["s2l check-adapter build/adapters/*"].startswith(
        f"build/adapters/{SKILLS[0]}: passes the structural checks of vLLM's LoRA loader")
    assert re.match(r"\*\s+prepare_model\s+up to date$", first_lines["s2l status"])
    assert first_lines["s2l cost"].split()[:3] == ["skill", "role", "backend"]


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
    assert explained[(SKILLS[0], "synthesize")] == ("up to date", "")
    assert explained[(SKILLS[0], "train")] == ("stale", "config.lora.r: 16 -> 8")
    assert explained[(SKILLS[0], "evaluate")] == ("stale", "train changed")
    # One rank-8 adapter is enough to see its rank-16 one come back from the store.
    trained = snakemake(workdir, f"build/adapters/{EDITED}", configfiles=(rank8,))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert trained.stdout.count("adapter in build/adapters") == 1
    # Back to rank 16: the adapter and its evaluation come back from the store, no training step runs.
    restored = build(workdir)
    assert restored.stdout.count("train: restored from the store") == 1
    assert restored.stdout.count("evaluate: restored from the store") == 1
    assert "adapter in build/adapters" not in restored.stdout


def test_a_synthesize_setting_reruns_from_synthesize_on(workdir: Path) -> None:
    hotter = override(workdir, "hotter", {"synthesize": {"generator": {"temperature": 1.0}}})
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
    state, why = status(workdir)[(EDITED, "train")]
    assert state == "cached" and why.startswith("restorable from the store")
    reverted = build(workdir)
    assert reverted.stdout.count("restored from the store") == len(STORED) + 1
    output = reverted.stdout + reverted.stderr
    assert f"{EDITED}: requests" not in output and "adapter in build/adapters" not in output
    assert file_sha256(adapter) == original_adapter


def test_forcerun_train_retrains_and_refreshes_the_store(workdir: Path) -> None:
    entries = {skill: workdir / "store" / "train" / key[:2] / key / "manifest.json"
               for skill in SKILLS for key in [manifest(workdir, skill, "train")["input_key"]]}
    stored_at = {skill: entry.stat().st_mtime_ns for skill, entry in entries.items()}
    weights = {skill: workdir / "build" / "adapters" / skill / "adapter_model.safetensors" for skill in SKILLS}
    before = {skill: file_sha256(path) for skill, path in weights.items()}
    forced = build(workdir, "--forcerun", "train")
    assert forced.stdout.count("adapter in build/adapters") == len(SKILLS)
    assert "train: restored from the store" not in forced.stdout
    # Deterministic on CPU: the same data, settings and seed train the same bytes, so the
    # evaluations downstream find their input keys in the store.
    assert {skill: file_sha256(path) for skill, path in weights.items()} == before
    assert forced.stdout.count("evaluate: restored from the store") == len(SKILLS)
    for skill, entry in entries.items():
        assert entry.stat().st_mtime_ns > stored_at[skill]  # the entry was replaced by the new build
        assert json.loads(entry.read_text())["restored_from_store"] is False


def test_an_identical_upstream_rerun_cuts_off_early(workdir: Path) -> None:
    # The dataset is built again from the same records: the same bytes, so training and eval, which
    # Snakemake schedules after it, find their input keys in the store and restore.
    rerun = build(workdir, "--forcerun", "dataset")
    assert len(re.findall(r": kept \d+ training and \d+ held-out records", rerun.stdout)) == len(SKILLS)
    for stage in ("train", "evaluate"):
        assert rerun.stdout.count(f"{stage}: restored from the store") == len(SKILLS)
    assert "adapter in build/adapters" not in rerun.stdout


def test_toggling_strict_reruns_only_parsing(workdir: Path) -> None:
    strict = override(workdir, "strict", {"strict": True})
    scheduled = dry_run(workdir, strict)
    assert {(rule, skill) for rule, skill in scheduled if rule == "parse_skill"} == jobs_for(("parse_skill",)) - {
        ("benchmark", None)}
    for configfiles in ((strict,), ()):  # to strict and back again
        result = build(workdir, *configfiles)
        output = result.stdout + result.stderr
        assert result.stdout.count("restored from the store") == len(SKILLS) * len(STORED) + 1
        assert not any(f"{skill}: requests" in output for skill in SKILLS)
        assert "adapter in build/adapters" not in output
    assert dry_run(workdir) == set()


def test_a_skill_edited_after_planning_is_refused(workdir: Path) -> None:
    skill_md = workdir / "skills" / EDITED / "SKILL.md"
    original = skill_md.read_text()
    skill_md.write_text(original + "\nEdited while the build was running.\n")
    try:
        job = s2l(workdir, "parse-skill", "--spec", f"build/specs/{EDITED}/parse_skill.json", "--model",
                  "build/models/base", "--out", "planned.json", "--manifest", "planned-manifest.json")
    finally:
        skill_md.write_text(original)
    assert job.returncode == 1
    assert f"{EDITED}/SKILL.md: content: changed since the build was planned" in job.stderr
    assert not (workdir / "planned.json").exists()


def test_an_output_changed_by_hand_is_refused_downstream(workdir: Path) -> None:
    dataset = workdir / "build" / "datasets" / f"{EDITED}.jsonl"
    original, built = dataset.read_bytes(), dataset.stat()
    dataset.write_bytes(original.replace(b'"content": "', b'"content": "Edited. ', 1))
    try:
        job = s2l(workdir, "train", "--spec", f"build/specs/{EDITED}/train.json", "--skill",
                  f"build/skills/{EDITED}.json", "--dataset", str(dataset), "--model", "build/models/base",
                  "--out", "elsewhere", "--metrics", "elsewhere.metrics.jsonl", "--manifest", "elsewhere.json")
    finally:
        dataset.write_bytes(original)
        os.utime(dataset, ns=(built.st_atime_ns, built.st_mtime_ns))  # as it was, for Snakemake too
    assert job.returncode == 1
    assert f"build/datasets/{EDITED}.jsonl: changed since dataset built it" in job.stderr
    assert not (workdir / "elsewhere").exists()
    assert dry_run(workdir) == set()  # the original bytes are back: nothing to do


def test_a_corrupted_store_entry_is_rebuilt_not_restored(workdir: Path) -> None:
    key = manifest(workdir, EDITED, "train")["input_key"]
    stored = workdir / "store" / "train" / key[:2] / key / "adapter" / "adapter_model.safetensors"
    stored.write_bytes(stored.read_bytes()[:1000])
    shutil.rmtree(workdir / "build" / "adapters" / EDITED)
    result = build(workdir)
    assert f"store entry {stored.parent.parent} is damaged" in result.stderr
    assert f"adapter in build/adapters/{EDITED}" in result.stdout
    adapter = workdir / "build" / "adapters" / EDITED / "adapter_model.safetensors"
    assert adapter.stat().st_size > 1000 and file_sha256(adapter) == file_sha256(stored)


def test_a_changed_chat_template_reruns_from_the_model_on(workdir: Path) -> None:
    template = workdir / "model" / CHAT_TEMPLATE
    original = template.read_text()
    replace_file(template, original.replace("<|im_start|>", "<|im_start|> "))
    try:
        assert dry_run(workdir) == jobs_for(CHAIN) | {("prepare_model", None)}
    finally:
        replace_file(template, original)
    assert dry_run(workdir) == set()


def test_losing_snakemake_metadata_retrains_nothing(workdir: Path) -> None:
    shutil.rmtree(workdir / ".snakemake")
    assert dry_run(workdir) == set()
