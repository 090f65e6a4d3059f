"""Evaluation: no skill vs the full SKILL.md in context vs the adapter (skill not in context).

Prompts come from the held-out split (the teacher's answers are the references) and from the
skill's evals.json (its expected outputs are the references). Each prompt gets ``samples`` sampled
answers per condition (greedy with temperature 0), scored by the skill's machine checks; a pass
rate is the mean over prompts of the share of answers that pass, with a 95% bootstrap interval
over prompts, and the adapter's differences from the other conditions get paired intervals
(s2l/stats.py). References are scored by their mean per-token NLL.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any

from s2l.chat import conversation
from s2l.checks import failed_checks
from s2l.errors import UserError
from s2l.generation import LocalBackend, Sampling
from s2l.scoring import answer_nll
from s2l.skill import Skill
from s2l.stats import bootstrap, paired_difference

CONDITIONS = ("no_skill", "skill_in_context", "adapter")


class NothingToEvaluateError(UserError):
    """No held-out record and no evals.json case: no condition can be scored."""


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = 128
    batch_size: int = 16
    samples: int = 4  # answers per prompt and condition
    temperature: float = 0.7  # 0: greedy
    top_p: float = 0.95

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_new_tokens)


@dataclass(frozen=True)
class EvalPrompt:
    id: str
    source: str  # "held_out" | "evals"
    request: str
    reference: str
    checks: tuple[dict[str, Any], ...]


def eval_prompts(skill: Skill, records: list[dict[str, Any]]) -> list[EvalPrompt]:
    prompts = [
        EvalPrompt(r["id"], "held_out", r["messages"][0]["content"], r["messages"][1]["content"], tuple(skill.checks))
        for r in records
        if r["split"] == "eval"
    ]
    prompts += [
        EvalPrompt(f"evals-{case['id']}", "evals", case["prompt"], case["expected_output"],
                   tuple(skill.checks) + tuple(case.get("checks", [])))
        for case in skill.evals
    ]
    return prompts


def mean_or_none(values: list[float]) -> float | None:
    return fmean(values) if values else None


SOURCES = (("all", None), ("held_out", "held_out"), ("evals", "evals"))


def pass_shares(answers: list[dict[str, Any]], source: str | None = None) -> list[float]:
    """Per prompt with checks (from ``source``, or all), the share of its sampled answers that pass."""
    return [fmean(a["passed"]) for a in answers if a["passed"] is not None and source in (None, a["source"])]


def evaluate_condition(model, tokenizer, skill: Skill, prompts: list[EvalPrompt], condition: str,
                       settings: EvalSettings, seed: int) -> dict[str, Any]:
    system = skill.text if condition == "skill_in_context" else None
    conversations = [conversation(p.request, system=system) for p in prompts]
    backend = LocalBackend(model, tokenizer, model_id="", batch_size=settings.batch_size)
    completions = backend.complete([c for c in conversations for _ in range(settings.samples)], settings.sampling,
                                   seed, desc=f"{skill.key}: {condition}")
    nll = answer_nll(model, tokenizer, conversations, [p.reference for p in prompts])
    answers = []
    for number, (prompt, loss) in enumerate(zip(prompts, nll)):
        sampled = completions[number * settings.samples:(number + 1) * settings.samples]
        failures = [failed_checks(prompt.checks, c.text) for c in sampled] if prompt.checks else None
        answers.append({
            "id": prompt.id,
            "source": prompt.source,
            "request": prompt.request,
            "passed": None if failures is None else [not f for f in failures],
            "failed_checks": [] if failures is None else sorted({check for f in failures for check in f}),
            "reference_nll": loss,
            "prompt_tokens": sampled[0].prompt_tokens,
            "answers": [c.text for c in sampled],
        })

    return {
        "pass_rate": {name: bootstrap(pass_shares(answers, source), seed) for name, source in SOURCES},
        "reference_nll": {name: mean_or_none([a["reference_nll"] for a in answers if source in (None, a["source"])])
                          for name, source in SOURCES},
        "prompt_tokens": mean_or_none([a["prompt_tokens"] for a in answers]),
        "answers": answers,
    }


def differences(conditions: dict[str, dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    """The adapter's pass rate minus each other condition's, paired over the prompts with checks."""
    adapter = pass_shares(conditions["adapter"]["answers"])
    return {f"adapter_minus_{other}": paired_difference(adapter, pass_shares(conditions[other]["answers"]), seed)
            for other in ("skill_in_context", "no_skill")}


def evaluate(model, tokenizer, skill: Skill, records: list[dict[str, Any]], settings: EvalSettings,
             seed: int) -> dict[str, Any]:
    """Run the three conditions; ``model`` is a PeftModel whose adapter is switched off for the base."""
    prompts = eval_prompts(skill, records)
    if not prompts:
        raise NothingToEvaluateError(
            f"skill {skill.key!r}: nothing to evaluate, the held-out split is empty and there is no evals.json "
            f"case; raise generation.eval_examples or add {skill.key}/evals/evals.json")
    conditions = {}
    for condition in CONDITIONS:
        if condition == "adapter":
            conditions[condition] = evaluate_condition(model, tokenizer, skill, prompts, condition, settings, seed)
        else:
            with model.disable_adapter():
                conditions[condition] = evaluate_condition(model, tokenizer, skill, prompts, condition, settings, seed)
    in_context = conditions["skill_in_context"]["prompt_tokens"]
    saved = in_context - conditions["adapter"]["prompt_tokens"]
    return {
        "prompts": {"held_out": sum(p.source == "held_out" for p in prompts),
                    "evals": sum(p.source == "evals" for p in prompts)},
        "samples_per_prompt": settings.samples,
        "conditions": conditions,
        "differences": differences(conditions, seed),
        "token_saving": {"prompt_tokens_per_request": saved, "fraction": saved / in_context},
    }
