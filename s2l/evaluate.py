"""Evaluation: no skill vs the full SKILL.md in context vs the adapter (skill not in context).

Prompts come from the held-out split (the teacher's answers are the references) and from the
skill's evals.json (its expected outputs are the references). Answers are greedy and scored by the
skill's machine checks; references are scored by their mean per-token NLL.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any

from s2l.errors import UserError
from s2l.chat import conversation
from s2l.checks import failed_checks
from s2l.generation import LocalBackend, Sampling
from s2l.scoring import answer_nll
from s2l.skill import Skill

CONDITIONS = ("no_skill", "skill_in_context", "adapter")


class NothingToEvaluateError(UserError):
    """No held-out record and no evals.json case: no condition can be scored."""


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = 128
    batch_size: int = 16


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


def rate(values: list[bool]) -> dict[str, Any]:
    return {"n": len(values), "mean": fmean(values) if values else None}


def mean_or_none(values: list[float]) -> float | None:
    return fmean(values) if values else None


def evaluate_condition(model, tokenizer, skill: Skill, prompts: list[EvalPrompt], condition: str,
                       settings: EvalSettings, seed: int) -> dict[str, Any]:
    system = skill.text if condition == "skill_in_context" else None
    conversations = [conversation(p.request, system=system) for p in prompts]
    backend = LocalBackend(model, tokenizer, model_id="", batch_size=settings.batch_size)
    completions = backend.complete(
        conversations, Sampling(max_new_tokens=settings.max_new_tokens), seed, desc=f"{skill.key}: {condition}"
    )
    nll = answer_nll(model, tokenizer, conversations, [p.reference for p in prompts])
    answers = []
    for prompt, completion, loss in zip(prompts, completions, nll):
        failures = failed_checks(prompt.checks, completion.text) if prompt.checks else None
        answers.append({
            "id": prompt.id,
            "source": prompt.source,
            "passed": None if failures is None else not failures,
            "failed_checks": failures or [],
            "reference_nll": loss,
            "prompt_tokens": completion.prompt_tokens,
            "answer": completion.text,
        })

    def subset(source: str | None) -> list[dict[str, Any]]:
        return [a for a in answers if source in (None, a["source"])]

    return {
        "pass_rate": {
            name: rate([a["passed"] for a in subset(source) if a["passed"] is not None])
            for name, source in (("all", None), ("held_out", "held_out"), ("evals", "evals"))
        },
        "reference_nll": {
            name: mean_or_none([a["reference_nll"] for a in subset(source)])
            for name, source in (("all", None), ("held_out", "held_out"), ("evals", "evals"))
        },
        "prompt_tokens": mean_or_none([a["prompt_tokens"] for a in answers]),
        "answers": answers,
    }


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
        "conditions": conditions,
        "token_saving": {"prompt_tokens_per_request": saved, "fraction": saved / in_context},
    }
