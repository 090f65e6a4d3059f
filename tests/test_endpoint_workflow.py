"""A skill's dataset built by the real workflow with both roles on a real OpenAI-compatible server on
loopback (``transformers serve``), through a crash of that server, an outage and a restart; on
that data, tiny Qwen3, Llama and Gemma bases trained and evaluated through the workflow, a merged
export, and a training job killed mid-way and resumed.

The tests share one server and work directories (a clean build, one per family built on its request
cache, and one whose server is killed mid-generation and rerun) and run in any order: the test
that retrains a build works on its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from endpoint_server import TransformersServer
from families import TINY_BASES, save_tiny_base
from workflow_helpers import ROOT

from s2l.models.request_cache import CACHE_FILE, RequestCache
from s2l.schemas import validate

pytestmark = pytest.mark.workflow

SKILL = "conventional-commits"
KEY_VARIABLE = "S2L_TEST_API_KEY"
KEY = "sk-s2l-test-7d1c0f5e9a2b4c68"  # must never land in a file the build writes
TARGET = f"build/datasets/{SKILL}.jsonl"
SYNTHETIC = f"build/synthetic/{SKILL}.jsonl"


@pytest.fixture(scope="module", autouse=True)
def api_key() -> None:
    os.environ[KEY_VARIABLE] = KEY  # the workflow's jobs inherit it, as from a user's shell
    yield
    os.environ.pop(KEY_VARIABLE, None)


@pytest.fixture(scope="module")
def server(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TransformersServer:
    running = TransformersServer(base_model_dir, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield running
    running.kill()


def make_workdir(root: Path, server: TransformersServer, base_model_dir: Path) -> Path:
    shutil.copytree(ROOT / "skills" / SKILL, root / "skills" / SKILL)
    role = {"backend": "openai", "model": server.model, "base_url": server.base_url,
            "connection": {"api_key_env": KEY_VARIABLE, "max_concurrency": 16, "max_retries": 1, "timeout": 120,
                           "price_per_million_tokens": {"prompt": 0.5, "completion": 1.5}}}
    config = {
        "skills_dir": str(root / "skills"), "store_dir": str(root / "store"),
        "base_model": {"source": str(base_model_dir), "id": "SmolLM2-135M-Instruct"},
        "synthesize": {"train_examples": 4, "eval_examples": 2, "teacher_examples": 1, "teacher_samples": 2,
                       "generator": role, "teacher": {**role, "max_new_tokens": 128}},
    }
    (root / "test.yaml").write_text(yaml.safe_dump(config))
    return root


def snakemake_command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
            TARGET, "--configfile", str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml")]


def build(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir), capture_output=True, text=True, timeout=900)


def cached_requests(workdir: Path) -> int:
    path = workdir / "store" / CACHE_FILE
    return len(RequestCache(path.parent)) if path.exists() else 0


def usage(workdir: Path) -> dict:
    return json.loads((workdir / f"build/datasets/{SKILL}.report.json").read_text())["usage"]


def files_holding(root: Path, text: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and text in path.read_bytes()]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, server: TransformersServer, base_model_dir: Path) -> dict:
    workdir = make_workdir(tmp_path_factory.mktemp("clean"), server, base_model_dir)
    before = server.posts()
    result = build(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"workdir": workdir, "result": result, "posts": server.posts() - before, "server": server}


def test_both_roles_build_a_valid_dataset_through_the_endpoint(clean: dict) -> None:
    workdir = clean["workdir"]
    synthetic = [json.loads(line) for line in (workdir / SYNTHETIC).read_text().splitlines()]
    assert len(synthetic) == 6
    for record in synthetic:
        for role in ("generator", "teacher"):
            assert (record[role]["backend"], record[role]["model"], record[role]["base_url"]) == (
                "openai", clean["server"].model, clean["server"].base_url)
    records = [json.loads(line) for line in (workdir / TARGET).read_text().splitlines()]
    assert records
    for record in records:
        validate(record, "dataset_record.schema.json")
    # Accounting: what the server saw is what the report says was sent, and tokens were counted.
    roles = usage(workdir)
    assert roles["generator"]["sent"] + roles["teacher"]["sent"] == clean["posts"]
    # Every generated text became a request or is counted as dropped (the surplus beyond 6 is unused).
    dropped = json.loads((workdir / f"build/datasets/{SKILL}.report.json").read_text())["generator_dropped"]
    assert roles["generator"]["sent"] - sum(dropped.values()) >= len(synthetic)
    for role in roles.values():
        assert role["backend"] == "openai" and role["cache_hits"] == 0 and role["retries"] == 0
        assert role["requests"] == role["sent"] > 0 and role["prompt_tokens"] > 0 and role["completion_tokens"] > 0
        expected = (role["prompt_tokens"] * 0.5 + role["completion_tokens"] * 1.5) / 1e6
        assert role["estimated_cost"] == pytest.approx(expected, abs=1e-6)


def test_the_cost_estimate_brackets_what_the_build_sent(clean: dict) -> None:
    from s2l.data.cost import estimate
    from s2l.engine.config import load_config
    from s2l.skills.skill import load_skill

    workdir = clean["workdir"]
    config = load_config([ROOT / "tests" / "quick.yaml", workdir / "test.yaml"])
    guesses = estimate(load_skill(workdir / "skills" / SKILL), config["synthesize"])
    # 6 requests asked: one round of 9 generator requests at the least; 6 teacher answers, at most 2 tries each.
    assert (guesses["generator"].requests_min, guesses["teacher"].requests_min,
            guesses["teacher"].requests_max) == (9, 6, 12)
    for role, sent in usage(workdir).items():
        assert guesses[role].requests_min <= sent["sent"] <= guesses[role].requests_max
        assert sent["completion_tokens"] <= guesses[role].completion_tokens_max
    listed = subprocess.run([sys.executable, "-m", "s2l", "cost", "-d", str(workdir), "--configfile",
                             str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml")],
                            capture_output=True, text=True, check=True).stdout
    assert f"{SKILL}" in listed and "openai" in listed


def test_the_key_lands_in_no_file_the_build_wrote(clean: dict) -> None:
    assert files_holding(clean["workdir"], KEY.encode()) == []
    assert KEY not in clean["result"].stdout + clean["result"].stderr


# Bases of other families, trained and evaluated through the whole workflow on the clean build's
# data: the same requests to the same server, so every one is answered from the request cache.
FAMILY_TARGETS = (f"build/eval/{SKILL}.json",)


def family_workdir(root: Path, family: str, clean: dict, base_model_dir: Path) -> Path:
    workdir = make_workdir(root, clean["server"], base_model_dir)
    config = yaml.safe_load((workdir / "test.yaml").read_text())
    config["store_dir"] = str(clean["workdir"] / "store")
    config["base_model"] = {"source": str(save_tiny_base(base_model_dir, family, root / "base")),
                            "id": f"s2l-tests/tiny-{family}"}
    config["evaluate"] = {"controls": False}
    config["merge"] = {"enabled": family == "llama"}
    (workdir / "test.yaml").write_text(yaml.safe_dump(config))
    return workdir


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory, clean: dict, base_model_dir: Path) -> dict[str, Path]:
    """One build per family, run side by side: tiny models, so the time is mostly each job's start."""
    before = clean["server"].posts()
    builds = {}
    for family in TINY_BASES:
        workdir = family_workdir(tmp_path_factory.mktemp(family), family, clean, base_model_dir)
        merged = (f"build/merged/{SKILL}",) if family == "llama" else ()
        command = snakemake_command(workdir)
        builds[family] = workdir, subprocess.Popen([*command[:-3], *FAMILY_TARGETS, *merged, *command[-3:]],
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for family, (workdir, running) in builds.items():
        output, _ = running.communicate(timeout=900)
        assert running.returncode == 0, f"{family}: {output[-3000:]}"
    assert clean["server"].posts() == before, "the families' data did not all come from the request cache"
    return {family: workdir for family, (workdir, _) in builds.items()}


@pytest.mark.parametrize("family", TINY_BASES)
def test_a_base_of_each_family_trains_and_evaluates_through_the_workflow(families: dict, family: str) -> None:
    from s2l.models.serving import vllm_lora_problems

    workdir = families[family]
    adapter = workdir / "build/adapters" / SKILL
    assert vllm_lora_problems(adapter) == []
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == f"s2l-tests/tiny-{family}"
    assert {name.rsplit(".", 1)[-1] for name in config["target_modules"]} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    steps = [json.loads(line) for line in (workdir / f"build/adapters/{SKILL}.metrics.jsonl").read_text().splitlines()]
    assert [step["step"] for step in steps] == [1, 2]  # tests/quick.yaml: max_steps 2
    assert all(step["tokens"] > 0 and step["tokens_per_second"] > 0 and step["peak_memory_mib"] > 0 for step in steps)
    card = (adapter / "README.md").read_text()
    assert f"--lora-modules {SKILL}={adapter.relative_to(workdir)}" in card.replace(str(workdir) + "/", "")
    report = json.loads((workdir / f"build/eval/{SKILL}.json").read_text())
    validate(report, "eval_report.schema.json")
    assert report["base_model"]["model_id"] == f"s2l-tests/tiny-{family}"
    assert set(report["conditions"]) == {"no_skill", "skill_in_context", "adapter"}


def test_the_merged_export_computes_what_base_plus_adapter_computes(families: dict) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    workdir = families["llama"]
    ids = torch.tensor([[1, 20, 300, 4000, 5, 60]])
    base = AutoModelForCausalLM.from_pretrained(workdir / "build/models/base", dtype=torch.float32)
    with torch.no_grad():
        plain = base(ids).logits
        expected = PeftModel.from_pretrained(base, workdir / "build/adapters" / SKILL).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(workdir / "build/merged" / SKILL, dtype=torch.float32)(ids).logits
    assert not torch.allclose(plain, expected)  # the adapter changes the output, so the comparison means something
    assert torch.allclose(merged, expected, atol=1e-5)


def training_processes(workdir: Path) -> list[int]:
    """Pids of the ``s2l train`` jobs running in ``workdir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if b"s2l" in command and b"train" in command and Path(os.readlink(proc / "cwd")) == workdir:
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def test_a_training_job_killed_mid_way_resumes_from_its_checkpoint(families: dict, tmp_path: Path) -> None:
    import signal

    # A copy of the llama build (timestamps kept, so it is up to date): what this test retrains and
    # kills is its own, and the other tests read the build as the fixture left it, in any order.
    workdir = tmp_path / "llama"
    shutil.copytree(families["llama"], workdir, symlinks=True)
    (workdir / "resume.yaml").write_text(yaml.safe_dump({"training": {"max_steps": 120, "checkpoint_steps": 20}}))
    command = [*snakemake_command(workdir)[:-3], f"build/adapters/{SKILL}", "--configfile",
               str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml"), str(workdir / "resume.yaml")]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    store = Path(yaml.safe_load((workdir / "test.yaml").read_text())["store_dir"])
    found: list[Path] = []
    deadline = time.monotonic() + 300
    while not found and time.monotonic() < deadline and running.poll() is None:
        found = list((store / "checkpoints" / "train").glob("*/checkpoint-40/trainer_state.json"))
        time.sleep(0.05)
    killed = training_processes(workdir)
    assert found and killed, "the training job finished or never checkpointed"
    checkpoints = found[0].parent.parent
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    output, _ = running.communicate(timeout=300)
    assert running.returncode != 0, output[-3000:]
    assert not (workdir / "build/adapters" / SKILL).exists()  # Snakemake removed the partial output
    assert (checkpoints / "checkpoint-40").is_dir()  # the checkpoints outlive the job

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoints}/checkpoint-" in resumed.stderr
    assert not checkpoints.exists()  # removed once training finished
    metrics = workdir / f"build/adapters/{SKILL}.metrics.jsonl"
    after_resume = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [step["step"] for step in after_resume] == list(range(1, 121))
    resumed_adapter = (workdir / "build/adapters" / SKILL / "adapter_model.safetensors").read_bytes()

    # The same training uninterrupted: same step count, same final loss.
    whole = subprocess.run([*command, "--forcerun", "train"], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0 and "resuming" not in whole.stderr, whole.stderr[-3000:]
    uninterrupted = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [step["step"] for step in uninterrupted] == list(range(1, 121))
    # Trainer's checkpoint holds the optimizer, scheduler and RNG states and the data order is seeded,
    # so on CPU the resumed run is the uninterrupted one to the bit (the loss within 1e-4 in any case).
    assert after_resume[-1]["loss"] == pytest.approx(uninterrupted[-1]["loss"], abs=1e-4)
    resumed_from = resumed.stderr.split("resuming from ", 1)[1].split(" ", 1)[0]
    assert resumed_adapter == (workdir / "build/adapters" / SKILL / "adapter_model.safetensors").read_bytes(), (
        f"resumed from {resumed_from}, killed once {found[0].parent.name} was written")


def test_a_server_killed_mid_generation_then_down_then_back_costs_only_the_missing_requests(
        tmp_path: Path, server: TransformersServer, base_model_dir: Path, clean: dict) -> None:
    workdir = make_workdir(tmp_path, server, base_model_dir)
    running = subprocess.Popen(snakemake_command(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 600
    while cached_requests(workdir) < 1 and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    server.kill()
    output, _ = running.communicate(timeout=600)
    completed = cached_requests(workdir)
    assert running.returncode != 0 and 0 < completed < clean["posts"], output[-3000:]
    assert "cannot reach it" in output and server.base_url in output
    assert not (workdir / SYNTHETIC).exists() and not (workdir / "build/manifests" / SKILL / "synthesize.json").exists()

    # While the server is down a rerun fails fast, and loses nothing it had.
    started = time.monotonic()
    down = build(workdir)
    assert down.returncode != 0 and "cannot reach it" in down.stderr
    assert time.monotonic() - started < 120
    assert cached_requests(workdir) == completed and not (workdir / SYNTHETIC).exists()

    server.start()
    before = server.posts()
    rerun = build(workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    sent = server.posts() - before
    roles = usage(workdir)
    assert sum(role["cache_hits"] for role in roles.values()) == completed  # every completed request reused
    assert sum(role["sent"] for role in roles.values()) == sent  # and only the missing ones sent
    assert cached_requests(workdir) == completed + sent
    assert len((workdir / SYNTHETIC).read_text().splitlines()) == len(
        (clean["workdir"] / SYNTHETIC).read_text().splitlines())
    for line in (workdir / TARGET).read_text().splitlines():
        validate(json.loads(line), "dataset_record.schema.json")
    assert files_holding(workdir, KEY.encode()) == []
