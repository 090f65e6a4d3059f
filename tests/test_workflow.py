"""End to end: the real Snakemake workflow, the real embedded model, a small config.

One work directory is built once (module fixtures: the first build, with malformed skills among
the good ones, then the complete build once they are gone) and the tests below inspect it in any
order: a test that edits the skills restores them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset
from workflow_helpers import ROOT, scheduled_jobs, snakemake

from s2l.data.dataset import record_features
from s2l.models.serving import vllm_lora_problems
from s2l.reports.evaluate import sha256_text
from s2l.schemas import validate

# The shipped skill the whole chain runs on here. A quick chain costs 4-6 minutes on 2 cores, too much
# to pay for every shipped skill in a 30-minute suite: the others are checked without the model
# (test_skill, test_form), their generation on the real model (test_synthetic), and their full
# default build by `make benchmark`.
GOOD = ("conventional-commits",)
# Spec deviations, and an evals.json without machine checks: builds with warnings, fails under strict.
DEVIANT = "deviant-commits"
MALFORMED = {
    "no-frontmatter": ("# A skill\n\nNo frontmatter at all.\n", "no-frontmatter/SKILL.md: frontmatter: missing"),
    "no-description": ("---\nname: no-description\n---\nBody.\n", "no-description/SKILL.md: description: missing"),
    "bad-yaml": ("---\nname: bad-yaml\ndescription: [unclosed\n---\nBody.\n",
                 "bad-yaml/SKILL.md: frontmatter: unparseable YAML"),
}
STAGES = ("parse_skill", "synthesize", "dataset", "train", "evaluate")
# Folders that cannot be skills: skipped with a warning naming them, the rest of the build goes on.
UNUSABLE = {"Literature_Review": "SKILL.md", ".draft": "SKILL.md", "lower-case": "skill.md"}
LONG = "long-skill"  # a SKILL.md over the base model's 8,192-token context

pytestmark = pytest.mark.workflow


def copy_skill(skills: Path, key: str, frontmatter_name: str) -> None:
    """conventional-commits under another folder name, with ``frontmatter_name`` as its name line."""
    shutil.copytree(ROOT / "skills" / "conventional-commits", skills / key)
    path = skills / key / "SKILL.md"
    path.write_text(path.read_text().replace("name: conventional-commits", frontmatter_name))


def write_deviant_skill(skills: Path) -> None:
    copy_skill(skills, DEVIANT, "name: Conventional Commits\nversion: 1.2\nauthor: someone")
    evals_file = skills / DEVIANT / "evals" / "evals.json"
    evals = json.loads(evals_file.read_text())
    evals.pop("checks")
    for case in evals["evals"]:
        case.pop("checks", None)
    evals_file.write_text(json.dumps(evals))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflow")
    skills = root / "skills"
    for key in GOOD:
        shutil.copytree(ROOT / "skills" / key, skills / key)
    write_deviant_skill(skills)
    for key, (text, _) in MALFORMED.items():
        (skills / key).mkdir(parents=True)
        (skills / key / "SKILL.md").write_text(text)
    for folder, file_name in UNUSABLE.items():
        shutil.copytree(ROOT / "skills" / GOOD[0], skills / folder)
        (skills / folder / "SKILL.md").rename(skills / folder / file_name)
    copy_skill(skills, LONG, f"name: {LONG}")
    long_text = (skills / LONG / "SKILL.md").read_text()
    (skills / LONG / "SKILL.md").write_text(long_text + "\n".join(
        f"{n}. Rule {n}: the scope names the module touched, in lower case, and never the ticket number." for n in
        range(700)))
    # The default base model, the embedded GGUF: generation on llama.cpp, as users build. (A model
    # folder source, on the transformers engine, is built by tests/test_rebuilds.py.)
    overrides = {"skills_dir": str(skills), "store_dir": str(root / "store")}
    (root / "test.yaml").write_text(yaml.safe_dump(overrides))
    return root


@pytest.fixture(scope="module")
def first_build(workdir: Path) -> subprocess.CompletedProcess:
    return snakemake(workdir, "--keep-going")


def test_malformed_skills_fail_naming_file_and_field(first_build: subprocess.CompletedProcess) -> None:
    assert first_build.returncode != 0
    output = first_build.stdout + first_build.stderr
    for _, expected in MALFORMED.values():
        assert expected in output


def test_unusable_folders_are_skipped_with_a_warning(first_build: subprocess.CompletedProcess) -> None:
    for folder in UNUSABLE:
        assert f"{folder}: skipped" in first_build.stderr


def test_a_skill_longer_than_the_context_is_refused_at_parse_time(first_build: subprocess.CompletedProcess) -> None:
    message = re.search(rf"{LONG}/SKILL.md: length: skill '{LONG}' needs ([\d,]+) tokens.*context is 8,192 tokens",
                        first_build.stderr)
    assert message and int(message.group(1).replace(",", "")) > 8192


def test_other_skills_still_build_every_artefact(workdir: Path, first_build: subprocess.CompletedProcess) -> None:
    build = workdir / "build"
    for key in (*GOOD, DEVIANT):
        for record in map(json.loads, (build / "synthetic" / f"{key}.jsonl").read_text().splitlines()):
            validate(record, "synthetic_record.schema.json")
            assert record["skill"]["key"] == key and len(record["skill"]["sha256"]) == 64
        records = [json.loads(line) for line in (build / "datasets" / f"{key}.jsonl").read_text().splitlines()]
        for record in records:
            validate(record, "dataset_record.schema.json")
        # The built JSONL loads through `datasets` with the declared features. Every text is intact;
        # `source` is free-form JSON whose floats datasets' JSON reader may round in the last digit
        # (0.95 -> 0.9500000000000001), and training reads only the messages.
        loaded = load_dataset("json", data_files=str(build / "datasets" / f"{key}.jsonl"),
                              features=record_features(), split="train", cache_dir=str(workdir / "hf-datasets"))
        assert loaded.features == record_features()
        assert [{**row, "source": None} for row in loaded] == [{**record, "source": None} for record in records]
        assert [row["source"]["teacher"]["model"] for row in loaded] == [r["source"]["teacher"]["model"] for r in records]
        report = json.loads((build / "datasets" / f"{key}.report.json").read_text())
        assert report["kept"]["train"] >= 1
        adapter = build / "adapters" / key
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert (config["r"], config["lora_alpha"], config["peft_type"]) == (16, 32, "LORA")
        assert (adapter / "adapter_model.safetensors").stat().st_size > 0
        assert vllm_lora_problems(adapter) == []
        card = (adapter / "README.md").read_text()
        assert report["skill"]["sha256"] in card and "trainable parameters" in card
        steps = [json.loads(line) for line in (build / "adapters" / f"{key}.metrics.jsonl").read_text().splitlines()]
        assert [step["step"] for step in steps] == [1, 2]  # tests/quick.yaml: max_steps 2
        assert all(step["loss"] > 0 and step["tokens"] > 0 for step in steps)
        # The logs show progress bars, in answers where the model writes, and no raw Python dicts.
        train_log = (build / "logs" / "train" / f"{key}.log").read_text()
        assert "training: 100%" in train_log and not re.search(r"^\{'", train_log, flags=re.MULTILINE)
        assert re.search(r"\d+/\d+ \[[^]]*(answer/s|s/answer)\]", (build / "logs" / "synthesize" / f"{key}.log").read_text())
        evaluation = json.loads((build / "eval" / f"{key}.json").read_text())
        validate(evaluation, "eval_report.schema.json")
        assert evaluation["token_saving"]["prompt_tokens_per_request"] > 100
        # What the model saw, as read from it: the SKILL.md as system prompt only in context, the
        # skill's own adapter active only in the adapter condition.
        skill_text = json.loads((build / "skills" / f"{key}.json").read_text())["text"]
        assert {name: values["seen"] for name, values in evaluation["conditions"].items()} == {
            "no_skill": {"system_prompt_sha256": None, "adapter": None},
            "skill_in_context": {"system_prompt_sha256": sha256_text(skill_text), "adapter": None},
            "adapter": {"system_prompt_sha256": None, "adapter": f"build/adapters/{key}"}}
        # No judge in tests/quick.yaml: every expectation is ungraded, and none passed.
        expected = sum(len(case.get("expectations", [])) for case in
                       json.loads((workdir / "skills" / key / "evals" / "evals.json").read_text())["evals"])
        for values in evaluation["conditions"].values():
            assert values["expectations"] == {"total": expected * evaluation["samples_per_prompt"], "graded": 0,
                                              "passed": 0, "ungraded": expected * evaluation["samples_per_prompt"],
                                              "pass_rate": None}
        # The report for people shows the same first prompt's request and each condition's first answer.
        shown = (build / "eval" / f"{key}.md").read_text()
        first = {condition: values["answers"][0] for condition, values in evaluation["conditions"].items()}
        assert first["adapter"]["request"] in shown
        assert all(answer["answers"][0] in shown for answer in first.values())
        assert "(evals.json case, its own checks too)" in shown
        # The build ends with each skill's result in words and where its report is; no raw dict on the way.
        assert "{'" not in first_build.stdout
        ending = first_build.stdout[first_build.stdout.rindex("Results:"):]
        scored = r"the adapter passes \d\.\d\d \[.*" if key in GOOD else r"no check scored its answers .*"
        assert re.search(rf"^{key}: {scored}\. Report: build/eval/{key}\.md$", ending, flags=re.MULTILINE)
        failing = [answer for answer in evaluation["conditions"]["adapter"]["answers"]
                   if answer["source"] == "evals" and answer["failed_checks"]]
        if key in GOOD:  # the shipped skill's report names a check an evals.json case failed
            assert any(f"; fails: {check}" in shown for answer in failing for check in answer["failed_checks"])
    for key in (*MALFORMED, *UNUSABLE, LONG):
        assert not (build / "adapters" / key).exists()


def test_nothing_the_evaluation_scores_reaches_the_teacher_or_training(workdir: Path, first_build) -> None:
    from s2l.skills.overlap import NearDuplicates

    build = workdir / "build"
    for key in GOOD:
        synthetic = [json.loads(line) for line in (build / "synthetic" / f"{key}.jsonl").read_text().splitlines()]
        training = [json.loads(line) for line in (build / "datasets" / f"{key}.jsonl").read_text().splitlines()]
        evals = json.loads((ROOT / "skills" / key / "evals" / "evals.json").read_text())["evals"]
        held_out = [r for r in synthetic if r["split"] == "eval"]
        train_ids = {r["id"] for r in synthetic if r["split"] == "train"}
        scored = NearDuplicates([case["prompt"] for case in evals] + [r["request"] for r in held_out])
        expected = NearDuplicates([case["expected_output"] for case in evals])
        for record in (r for r in training if r["split"] == "train"):
            request, answer = (message["content"] for message in record["messages"])
            assert not scored.find(request), f"{record['id']}: near an evals.json prompt or a held-out request"
            assert not expected.find(answer), f"{record['id']}: near an evals.json expected output"
        for record in synthetic:  # the teacher saw only the skill's own examples and training answers
            for shown in record["shown_examples"]:
                assert shown.startswith("skill-example-") or shown in train_ids, (record["id"], shown)


def test_the_dataset_report_says_what_the_teacher_did(workdir: Path, first_build) -> None:
    build = workdir / "build"
    for key in GOOD:
        report = json.loads((build / "datasets" / f"{key}.report.json").read_text())
        kept = report["kept"]["train"] + report["kept"]["eval"]
        teacher = report["teacher"]
        # tests/quick.yaml keeps the first answer that ends its turn; the checks are still scored.
        assert teacher["filter_by_checks"] is False and teacher["skill_checks"] > 0
        assert teacher["answers_tried"] >= report["input_records"] >= kept
        synthetic = [json.loads(line) for line in (build / "synthetic" / f"{key}.jsonl").read_text().splitlines()]
        assert teacher["answers_tried"] == sum(record["samples"] for record in synthetic)
        passing = sum(record["passed_checks"] is True for record in synthetic)
        assert teacher["raw_pass_rate"] == pytest.approx(passing / teacher["answers_tried"])
    unchecked = json.loads((build / "datasets" / f"{DEVIANT}.report.json").read_text())["teacher"]
    assert unchecked["raw_pass_rate"] is None and "nothing was filtered" in unchecked["note"]


def test_spec_deviations_are_warnings_in_log_and_report(workdir: Path, first_build: subprocess.CompletedProcess) -> None:
    output = first_build.stdout + first_build.stderr
    assert f"warning: skill {DEVIANT}:" in output and "author, version" in output
    report = json.loads((workdir / "build" / "datasets" / f"{DEVIANT}.report.json").read_text())
    assert any("Directory name" in warning for warning in report["warnings"])
    assert any("Unexpected fields" in warning for warning in report["warnings"])


@pytest.fixture(scope="module")
def complete_build(workdir: Path, first_build) -> dict:
    """The build once the skills that cannot build are removed: what it had made before, what a dry
    run then scheduled, and the run."""
    shared_before = (workdir / "build" / "adapters" / "_shared").exists()
    for key in (*MALFORMED, LONG):
        shutil.rmtree(workdir / "skills" / key)
    scheduled = scheduled_jobs(snakemake(workdir, "-n").stdout)
    return {"shared_before": shared_before, "scheduled": scheduled, "result": snakemake(workdir)}


def test_benchmark_and_controls_wait_until_malformed_skills_are_gone(workdir: Path, complete_build: dict) -> None:
    # The shared adapter needs every skill's dataset: while one skill fails, no control can run.
    assert not complete_build["shared_before"]
    built = sorted((*GOOD, DEVIANT))
    assert complete_build["scheduled"] == {("train_shared", None), ("benchmark", None)} | {
        ("evaluate_controls", key) for key in built}
    result = complete_build["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "build" / "benchmark.json").read_text())
    validate(summary, "benchmark.schema.json")
    assert [row["skill"] for row in summary["rows"]] == built
    for number, key in enumerate(built):
        controls = json.loads((workdir / "build" / "eval" / "controls" / f"{key}.json").read_text())
        validate(controls, "controls_report.schema.json")
        other = built[(number + 1) % len(built)]  # the next skill in sorted order
        assert {name: values["seen"] for name, values in controls["conditions"].items()} == {
            "wrong_adapter": {"system_prompt_sha256": None, "adapter": f"build/adapters/{other}"},
            "shared_adapter": {"system_prompt_sha256": None, "adapter": "build/adapters/_shared"}}
        own = json.loads((workdir / "build" / "eval" / f"{key}.json").read_text())
        # Same prompts as the skill's own evaluation, so the differences are paired.
        assert [a["id"] for a in controls["conditions"]["shared_adapter"]["answers"]] == [
            a["id"] for a in own["conditions"]["adapter"]["answers"]]
    assert vllm_lora_problems(workdir / "build" / "adapters" / "_shared") == []
    shared_card = (workdir / "build" / "adapters" / "_shared" / "README.md").read_text()
    shared_records = sum(json.loads(line)["split"] == "train" for key in built
                         for line in (workdir / "build" / "datasets" / f"{key}.jsonl").read_text().splitlines())
    assert f"| training records | {shared_records} |" in shared_card
    assert "| conventional-commits |" in (workdir / "build" / "benchmark.md").read_text()
    assert (workdir / "build" / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def embedded_files(report_html: str) -> dict[str, bytes]:
    """The files a Snakemake HTML report embeds, by file name (they sit in it as base64 data URIs)."""
    return {name: base64.b64decode(data) for name, data in
            re.findall(r"data:[\w/+.-]+;charset=utf8;filename=([^;]+);base64,([A-Za-z0-9+/=]+)", report_html)}


def test_snakemake_report_holds_the_benchmark_table_plot_and_eval_reports(workdir: Path, complete_build) -> None:
    result = snakemake(workdir, "--report", str(workdir / "build" / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    embedded = embedded_files((workdir / "build" / "report.html").read_text())
    table = (workdir / "build" / "benchmark.md").read_text()
    assert "| conventional-commits |" in table and embedded["benchmark.md"].decode() == table
    assert embedded["benchmark.png"] == (workdir / "build" / "benchmark.png").read_bytes()
    assert embedded["conventional-commits.md"].decode() == (workdir / "build" / "eval" / "conventional-commits.md").read_text()


def test_adapter_loads_with_peft_and_scores_as_in_its_eval_report(workdir: Path, first_build,
                                                                  base_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from s2l.models.chat import conversation
    from s2l.models.scoring import answer_nll

    report = json.loads((workdir / "build" / "eval" / f"{GOOD[0]}.json").read_text())
    case = next(c for c in json.loads((ROOT / "skills" / GOOD[0] / "evals" / "evals.json").read_text())["evals"])
    scored = {a["id"]: a["reference_nll"] for a in report["conditions"]["adapter"]["answers"]}
    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    messages = [conversation(case["prompt"])]
    without = answer_nll(base, tokenizer, messages, [case["expected_output"]])[0]
    model = PeftModel.from_pretrained(base, workdir / "build" / "adapters" / GOOD[0]).eval()
    with_adapter = answer_nll(model, tokenizer, messages, [case["expected_output"]])[0]
    # The folder as PEFT loads it is the adapter the evaluation scored, and it moves the base model.
    assert with_adapter == pytest.approx(scored[f"evals-{case['id']}"], rel=1e-3)
    assert with_adapter != pytest.approx(without, rel=1e-4)
    # The model card's snippet runs as written, offline, in the work directory.
    card = (workdir / "build" / "adapters" / GOOD[0] / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", card, flags=re.DOTALL).group(1)
    ran = subprocess.run([sys.executable, "-c", snippet + "print(type(model).__name__)"], cwd=workdir,
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert ran.returncode == 0 and ran.stdout.strip().endswith("PeftModelForCausalLM"), ran.stderr[-2000:]


def test_dag_renders_with_graphviz(workdir: Path, first_build) -> None:
    dot = shutil.which("dot")
    assert dot, "graphviz is needed for DAG renders: apt-get install graphviz (make setup does it)"
    dag = snakemake(workdir, "--dag")
    assert dag.returncode == 0 and dag.stdout.lstrip().startswith("digraph")
    svg = subprocess.run([dot, "-Tsvg"], input=dag.stdout, capture_output=True, text=True, check=True)
    assert "<svg" in svg.stdout and "train" in svg.stdout


def test_touch_without_change_schedules_nothing(workdir: Path, complete_build) -> None:
    for skill_md in (workdir / "skills").glob("*/SKILL.md"):
        skill_md.touch()
    for evals in (workdir / "skills").glob("*/evals/evals.json"):
        evals.touch()
    dry_run = snakemake(workdir, "-n")
    assert dry_run.returncode == 0
    assert scheduled_jobs(dry_run.stdout) == set()
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr


def test_strict_mode_refuses_spec_deviations(workdir: Path, tmp_path: Path, base_model_dir: Path) -> None:
    # A separate work directory: flipping strict here would rerun parsing in the shared one.
    (tmp_path / "skills").mkdir()
    write_deviant_skill(tmp_path / "skills")
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"skills_dir": str(tmp_path / "skills"),
                                                        "base_model": {"source": str(base_model_dir), "id": "x"}}))
    # As the README writes it: Snakemake hands over the string "true".
    result = snakemake(tmp_path, f"build/skills/{DEVIANT}.json", "--config", "strict=true")
    assert result.returncode != 0
    assert f"{DEVIANT}/SKILL.md: spec: strict mode refuses deviations" in result.stdout + result.stderr


def test_an_empty_skills_dir_is_a_one_line_error(tmp_path: Path, base_model_dir: Path) -> None:
    (tmp_path / "skills").mkdir()
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"skills_dir": str(tmp_path / "skills"),
                                                        "base_model": {"source": str(base_model_dir), "id": "x"}}))
    result = snakemake(tmp_path, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "no skill in it" in line]
    assert lines == [f"skills_dir {tmp_path / 'skills'}: no skill in it (a skill is a folder holding SKILL.md)"]


def test_editing_one_skill_schedules_its_chain_the_shared_adapter_and_the_controls(workdir: Path,
                                                                                   complete_build) -> None:
    skill_md = workdir / "skills" / GOOD[0] / "SKILL.md"
    original = skill_md.read_text()
    skill_md.write_text(original + "\nPrefer the narrowest scope that fits.\n")
    try:
        dry_run = snakemake(workdir, "-n")
        alone = snakemake(workdir, "-n", f"build/eval/{GOOD[0]}.json", "--config", "evaluate={controls: false}")
    finally:
        skill_md.write_text(original)  # the other tests read the build as it was
    assert dry_run.returncode == 0
    built = (*GOOD, DEVIANT)
    # Other skills' own adapters and evaluations stay; every skill's controls read the shared adapter.
    assert scheduled_jobs(dry_run.stdout) == {(stage, GOOD[0]) for stage in STAGES} | {
        ("train_shared", None), ("benchmark", None)} | {("evaluate_controls", key) for key in built}
    # With the controls off, one skill's build touches no other skill.
    assert scheduled_jobs(alone.stdout) == {(stage, GOOD[0]) for stage in STAGES}


# Through a real single-node Slurm (tests/slurm_cluster.py) with profiles/slurm, on the store of the
# build above: every stored stage restores inside its Slurm job, so the run proves the jobs, their
# environment and the shared store on the cluster without training again.
@pytest.fixture(scope="module")
def slurm():
    from slurm_cluster import SlurmCluster, ensure_installed

    ensure_installed()
    # Not under pytest's 0700 temporary folders: munged needs every folder above its socket open to all.
    root = Path(tempfile.mkdtemp(prefix="s2l-slurm-"))
    root.chmod(0o755)
    try:
        with SlurmCluster(root) as cluster:
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


def slurm_snakemake(workdir: Path, cluster, *args: str,
                    configfiles: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "2", *args,
               # No accounting on the test cluster: squeue reports job states (MinJobAge 300 s).
               "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
               "--seconds-between-status-checks", "1", "--latency-wait", "5",
               "--default-resources", f"slurm_partition={cluster.partition}", "mem_mb=3000", "runtime=30",
               "--configfile", str(ROOT / "tests" / "quick.yaml"), str(workdir / "test.yaml"), *map(str, configfiles)]
    # A hung status query must fail the test, not hang it.
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=cluster.environ())


@pytest.fixture(scope="module")
def slurm_workdir(workdir: Path, first_build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("on-slurm")
    config = yaml.safe_load((workdir / "test.yaml").read_text())  # the same skills and store
    (root / "test.yaml").write_text(yaml.safe_dump({**config, "model_threads": 2, "evaluate": {"controls": False}}))
    return root


SLURM_COMPARED = tuple(path.format(key=GOOD[0]) for path in (
    "build/adapters/{key}/adapter_model.safetensors", "build/adapters/{key}/adapter_config.json",
    "build/datasets/{key}.jsonl", "build/eval/{key}.json"))


@pytest.fixture(scope="module")
def slurm_build(slurm, slurm_workdir: Path) -> dict:
    """The quick build of one skill's eval report through Slurm, restoring from the local build's store:
    the run, and its stage logs and outputs as it left them (the other Slurm tests rebuild some)."""
    key = GOOD[0]
    result = slurm_snakemake(slurm_workdir, slurm, f"build/eval/{key}.json")
    logs = {stage: (slurm_workdir / f"build/logs/{stage}/{key}.log").read_text()
            for stage in STAGES if (slurm_workdir / f"build/logs/{stage}/{key}.log").is_file()}
    files = {path: (slurm_workdir / path).read_bytes() for path in SLURM_COMPARED if (slurm_workdir / path).is_file()}
    return {"result": result, "logs": logs, "files": files}


def test_the_quick_build_runs_through_slurm_and_equals_the_local_one(slurm, slurm_build: dict,
                                                                     workdir: Path) -> None:
    result = slurm_build["result"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    job_ids = dict(re.findall(r"SLURM jobid (\d+) \(log: (\S+)\)", output))
    rules = {re.search(r"rule_(\w+)", log).group(1) for log in job_ids.values()}
    assert rules == {"prepare_model", "synthesize", "dataset", "train", "evaluate"}  # parse_skill is local
    for job_id in job_ids:
        state = slurm.run("scontrol", "show", "job", job_id).stdout
        assert "JobState=COMPLETED" in state and f"NodeList={slurm.node}" in state
    # Each stored stage restored inside its Slurm job, as its rule's log (written on the node) says.
    for stage in ("synthesize", "dataset", "train", "evaluate"):
        assert f"{stage}: restored from the store" in slurm_build["logs"][stage]
    for path in SLURM_COMPARED:
        assert slurm_build["files"].get(path) == (workdir / path).read_bytes(), path


def test_a_forced_job_on_slurm_builds_afresh(slurm, slurm_build, slurm_workdir: Path) -> None:
    """--forcerun reaches the Slurm job (S2L_FORCED is declared to the executor): the dataset, in
    the store since the build above, is built again rather than restored."""
    key = GOOD[0]
    log = slurm_workdir / f"build/logs/dataset/{key}.log"
    forced = slurm_snakemake(slurm_workdir, slurm, f"build/datasets/{key}.jsonl", "--forcerun", "dataset")
    assert forced.returncode == 0, (forced.stdout + forced.stderr)[-4000:]
    assert re.search(r"SLURM jobid \d+ \(log: \S+rule_dataset", forced.stdout + forced.stderr)
    assert "restored from the store" not in log.read_text()


def test_a_job_failing_on_slurm_names_its_job_id_and_log_and_loses_nothing(slurm, slurm_build,
                                                                            slurm_workdir: Path) -> None:
    key = GOOD[0]
    strict = slurm_workdir / "too-few.yaml"
    # store: write builds afresh (a stored dataset would be restored without running its checks).
    strict.write_text(yaml.safe_dump({"dataset": {"min_train_records": 1000}, "store": "write"}))
    failed = slurm_snakemake(slurm_workdir, slurm, f"build/datasets/{key}.jsonl", "--forcerun", "dataset",
                             "--retries", "1", configfiles=(strict,))
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    attempts = re.findall(r"SLURM jobid (\d+) \(log: (\S+rule_dataset\S+)\)", output)
    assert len(attempts) == 2, output[-4000:]  # --retries 1: submitted again once
    for job_id, log in attempts:  # the failure names the Slurm job, the rule's log and the Slurm log
        assert f"SLURM-job '{job_id}' failed" in output
        assert f"log: build/logs/dataset/{key}.log, {log}" in output
    last_log = Path(attempts[-1][1])
    assert re.search(rf"too few valid records for skill '{key}': \d+ train \(need 1000\)",
                     (slurm_workdir / last_log).read_text())  # a relative log path is the work directory's
    assert (slurm_workdir / f"build/adapters/{key}/adapter_model.safetensors").is_file()
    assert (slurm_workdir / f"build/eval/{key}.json").is_file()
    # The dataset Snakemake removed with the failed job is still in the store, for the next run.
    status = subprocess.run([sys.executable, "-m", "s2l", "status", "-d", str(slurm_workdir), "--configfile",
                             str(ROOT / "tests" / "quick.yaml"), str(slurm_workdir / "test.yaml")],
                            capture_output=True, text=True, check=True).stdout
    assert re.search(rf"^{key}\s+dataset\s+cached\s+restorable from the store", status, flags=re.MULTILINE), status
