"""The default engine through the real workflow: a shipped skill built from the embedded GGUF as
it ships (``synthesize.engine`` and ``evaluate.engine`` auto: llama.cpp) with tests/quick.yaml, up to
its eval report (the stage-timing benchmark's tiny build, shared with tests/test_benchmarks.py) and
then the serving folder; ``s2l serve`` on that folder, the skill's adapter asked through the
``openai`` client against what PEFT generates with it. (tests/test_rebuilds.py builds on the
transformers engine: a model folder source.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from endpoint_server import S2lServer
from workflow_helpers import ROOT, snakemake

from s2l.models.llamacpp_server import SERVER_CONFIG
from s2l.schemas import validate

pytestmark = pytest.mark.workflow

SKILLS = ("conventional-commits",)


@pytest.fixture(scope="module")
def build(quick_build: tuple[Path, dict]) -> Path:
    """The stage-timing benchmark's tiny build (conftest.py: tests/quick.yaml, the embedded GGUF),
    and then its serving folder, on the same config."""
    workdir, _ = quick_build
    (workdir / "test.yaml").write_text(yaml.safe_dump({"skills_dir": str(workdir / "skills")}))
    result = snakemake(workdir, "build/serve")
    assert result.returncode == 0, result.stderr[-3000:]
    # Everything else was built already: only the serving folder is made.
    log = result.stdout + result.stderr
    assert "rule prepare_serving:" in log and "rule train:" not in log, log[-3000:]
    return workdir / "build"


def test_both_roles_and_the_evaluation_ran_on_llama_cpp_and_the_datasets_validate(build: Path) -> None:
    for key in SKILLS:
        usage = json.loads((build / "synthetic" / f"{key}.usage.json").read_text())
        assert {role: values["engine"] for role, values in usage.items()} == {"generator": "llama.cpp",
                                                                                "teacher": "llama.cpp"}
        records = [json.loads(line) for line in (build / "datasets" / f"{key}.jsonl").read_text().splitlines()]
        assert records
        for record in records:
            validate(record, "dataset_record.schema.json")
        report = json.loads((build / "eval" / f"{key}.json").read_text())
        validate(report, "eval_report.schema.json")
        assert report["settings"]["engine"] == "llama.cpp"
        assert "written by llama.cpp" in (build / "eval" / f"{key}.md").read_text()
        assert report["conditions"]["adapter"]["seen"]["adapter"] == f"build/adapters/{key}"


def test_the_serving_folder_serves_each_adapter_as_peft_generates_with_it(build: Path, base_model_dir: Path,
                                                                        tokenizer) -> None:
    """Each skill's adapter on the server, greedily, on four evals.json prompts, against PEFT with the
    same adapter on the float32 model: the same first three tokens on at least three of four answers
    (4-bit weights against float32: a rounding apart can part two greedy answers, tests/test_llamacpp.py);
    the base model answers otherwise, and ``auto`` sends each prompt to its skill."""
    from openai import OpenAI

    from s2l.models.backend import Sampling
    from s2l.models.chat import conversation
    from s2l.models.generation import LocalBackend
    from s2l.models.model import load_model

    models = {entry["model_alias"]: entry for entry in json.loads((build / "serve" / SERVER_CONFIG).read_text())["models"]}
    assert set(models) == {"base", *SKILLS} and models["base"]["lora_path"] is None
    assert all(Path(models[key]["lora_path"]).is_file() for key in SKILLS)
    server = S2lServer(build / "serve", build / "serve.log").start()
    try:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)

        def ask(model: str, prompt: str) -> tuple[str, str | None]:
            response = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=24,
                extra_body={"repeat_penalty": 1.0})
            return response.parse().choices[0].message.content, response.headers.get("x-s2l-skill")

        for key in SKILLS:
            cases = json.loads((ROOT / "skills" / key / "evals" / "evals.json").read_text())["evals"][:4]
            prompts = [case["prompt"] for case in cases]
            served = [ask(key, prompt)[0] for prompt in prompts]
            peft = LocalBackend(load_model(base_model_dir, {key: build / "adapters" / key}), tokenizer, key, 2).complete(
                [conversation(prompt) for prompt in prompts], Sampling(max_new_tokens=24), seed=0)
            agree = [tokenizer(ours)["input_ids"][:3] == tokenizer(theirs.text)["input_ids"][:3]
                     for ours, theirs in zip(served, peft)]
            assert sum(agree) >= 3, (served, [c.text for c in peft])
            assert served != [ask("base", prompt)[0] for prompt in prompts]
            assert [ask("auto", prompt) for prompt in prompts] == [(answer, key) for answer in served]
    finally:
        server.kill()
