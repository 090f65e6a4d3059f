"""Evaluation: no skill vs the full SKILL.md in context vs the adapter (skill not in context), and
the paper's two controls on the same prompts: another skill's adapter and the shared adapter.

Prompts come from the held-out split (the teacher's answers are the references) and from the
skill's evals.json (its expected outputs are the references; the files a case lists are given with
its prompt). Each prompt gets ``samples`` sampled answers per condition (greedy with temperature 0),
scored by the skill's machine checks; a pass rate is the mean over prompts of the share of answers
that pass, with a 95% bootstrap interval over prompts, and the adapter's differences from the other
conditions get paired intervals (s2l/reports/stats.py). References are scored by their mean per-token NLL.
The natural-language expectations of evals.json go to the judge (s2l/models/judge.py), if one is set.

The answers come from an ``Answerer``: the PeftModel itself (transformers), or llama.cpp with the
condition's adapter converted to a GGUF LoRA; the reference NLL is scored on the PeftModel either way.
What the model sees is recorded per condition from the model itself: the system prompt's hash and
the adapter active in its LoRA layers while it answered.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any, Callable

from s2l.errors import UserError
from s2l.models.backend import Sampling
from s2l.models.chat import conversation
from s2l.models.judge import Judge, expectation_summary
from s2l.reports.stats import bootstrap, paired_difference
from s2l.skills.checks import failed_checks
from s2l.skills.skill import Skill

CONDITIONS = ("no_skill", "skill_in_context", "adapter")
CONTROLS = ("wrong_adapter", "shared_adapter")
# Per condition: is the skill text the system prompt, and which adapter (by its name on the PeftModel,
# which is the condition's name) is active; None is the base model alone.
SEEN = {"no_skill": (False, None), "skill_in_context": (True, None), "adapter": (False, "adapter"),
        "wrong_adapter": (False, "wrong_adapter"), "shared_adapter": (False, "shared_adapter")}


# A backend that answers with the named adapter active (None: the base model alone).
Answerer = Callable[[str | None], Any]


class NothingToEvaluateError(UserError):
    """No held-out record and no evals.json case: no condition can be scored."""


@dataclass(frozen=True)
class EvalSettings:
    """How the conditions are sampled: the ``eval`` section of the config (defaults: config.yaml)."""

    max_new_tokens: int
    batch_size: int
    samples: int  # answers per prompt and condition
    temperature: float  # 0: greedy
    top_p: float

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
    expectations: tuple[str, ...] = ()


def with_files(prompt: str, files: dict[str, str]) -> str:
    """An evals.json prompt with the files its case lists, each under its path, as the skill-creator
    hands a case's input files to the model."""
    return prompt + "".join(f"\n\nFile {name}:\n```\n{text.rstrip()}\n```" for name, text in files.items())


def eval_prompts(skill: Skill, records: list[dict[str, Any]]) -> list[EvalPrompt]:
    prompts = [
        EvalPrompt(r["id"], "held_out", r["messages"][0]["content"], r["messages"][1]["content"], tuple(skill.checks))
        for r in records
        if r["split"] == "eval"
    ]
    prompts += [
        EvalPrompt(f"evals-{case['id']}", "evals", with_files(case["prompt"], case.get("file_texts", {})),
                   case["expected_output"], tuple(skill.checks) + tuple(case.get("checks", [])),
                   tuple(case.get("expectations", [])))
        for case in skill.evals
    ]
    if not prompts:
        raise NothingToEvaluateError(
            f"skill {skill.key!r}: nothing to evaluate, the held-out split is empty and there is no evals.json "
            f"case; raise synthesize.eval_examples or add {skill.key}/evals/evals.json")
    return prompts


def mean_or_none(values: list[float]) -> float | None:
    return fmean(values) if values else None


SOURCES = (("all", None), ("held_out", "held_out"), ("evals", "evals"))


def pass_shares(answers: list[dict[str, Any]], source: str | None = None) -> list[float]:
    """Per prompt with checks (from ``source``, or all), the share of its sampled answers that pass."""
    return [fmean(a["passed"]) for a in answers if a["passed"] is not None and source in (None, a["source"])]


def active_adapter(model) -> str | None:
    """The adapter the model's LoRA layers apply right now (None: switched off, the base model)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next(module for module in model.modules() if isinstance(module, BaseTunerLayer))
    return None if layer.disable_adapters else layer.active_adapters[0]


def sha256_text(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def torch_answerer(model, tokenizer, batch_size: int) -> Answerer:
    """Answers from the PeftModel itself, with whichever adapter evaluate_condition switched on."""
    from s2l.models.generation import LocalBackend  # torch: only where a model answers, not for the reports

    return lambda adapter: LocalBackend(model, tokenizer, model_id="", batch_size=batch_size)


def evaluate_condition(model, tokenizer, skill: Skill, prompts: list[EvalPrompt], condition: str,
                       adapters: dict[str, Path], settings: EvalSettings, seed: int,
                       answerer: Answerer) -> dict[str, Any]:
    """Answers and scores for one condition; ``model`` is a PeftModel holding ``adapters`` by name."""
    from s2l.models.scoring import answer_nll  # torch: only where a model scores, not for the reports

    in_context, adapter = SEEN[condition]
    system = skill.text if in_context else None
    conversations = [conversation(p.request, system=system) for p in prompts]
    if adapter is not None:
        model.set_adapter(adapter)
    with model.disable_adapter() if adapter is None else nullcontext():
        active = active_adapter(model)
        backend = answerer(adapter)
        completions = backend.complete([c for c in conversations for _ in range(settings.samples)],
                                       settings.sampling, seed, desc=f"{skill.key}: {condition}")
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
        "seen": {"system_prompt_sha256": sha256_text(system), "adapter": None if active is None else str(adapters[active])},
        "pass_rate": {name: bootstrap(pass_shares(answers, source), seed) for name, source in SOURCES},
        "reference_nll": {name: mean_or_none([a["reference_nll"] for a in answers if source in (None, a["source"])])
                          for name, source in SOURCES},
        "prompt_tokens": mean_or_none([a["prompt_tokens"] for a in answers]),
        # Answers are generated in batches: this is the batch time shared out over its requests.
        "wall_seconds_per_request": backend.usage.wall_seconds / len(completions),
        "answers": answers,
    }


def grade_expectations(conditions: dict[str, dict[str, Any]], prompts: list[EvalPrompt], judge: Judge | None,
                       seed: int) -> None:
    """Add per answer its expectations' verdicts and per condition their summary (all ungraded
    without a judge)."""
    by_id = {p.id: p for p in prompts}
    entries = [(values, answer) for values in conditions.values() for answer in values["answers"]
               if by_id[answer["id"]].expectations]
    items = [(answer["request"], text, list(by_id[answer["id"]].expectations))
             for _, answer in entries for text in answer["answers"]]
    verdicts = judge.grade(items, seed) if judge else [[None] * len(item[2]) for item in items]
    position = 0
    for _, answer in entries:
        answer["expectations"] = verdicts[position:position + len(answer["answers"])]
        position += len(answer["answers"])
    for values in conditions.values():
        values["expectations"] = expectation_summary(
            [v for answer in values["answers"] for v in answer.get("expectations", [])])


def judge_record(judge: Judge | None) -> dict[str, Any] | None:
    return None if judge is None else {"label": judge.label, "backend": judge.backend_name,
                                       "model": judge.backend.model_id,
                                       **judge.backend.usage.summary(judge.price)}


def run_conditions(model, tokenizer, skill: Skill, prompts: list[EvalPrompt], names: tuple[str, ...],
                   adapters: dict[str, Path], settings: EvalSettings, seed: int, judge: Judge | None,
                   answerer: Answerer | None) -> dict[str, dict[str, Any]]:
    answerer = answerer or torch_answerer(model, tokenizer, settings.batch_size)
    conditions = {name: evaluate_condition(model, tokenizer, skill, prompts, name, adapters, settings, seed, answerer)
                  for name in names}
    # A local judge is the base model: no adapter may be on while it grades.
    with model.disable_adapter() if judge and judge.backend_name == "local" else nullcontext():
        grade_expectations(conditions, prompts, judge, seed)
    return conditions


def differences(adapter: list[dict[str, Any]], others: dict[str, dict[str, Any]], seed: int) -> dict[str, Any]:
    """The adapter's pass rate minus each other condition's, paired over the prompts with checks."""
    ours = pass_shares(adapter)
    return {f"adapter_minus_{name}": paired_difference(ours, pass_shares(values["answers"]), seed)
            for name, values in others.items()}


def evaluate(model, tokenizer, skill: Skill, records: list[dict[str, Any]], settings: EvalSettings, seed: int,
             adapter: Path, judge: Judge | None = None, answerer: Answerer | None = None) -> dict[str, Any]:
    """The three conditions; ``model`` is a PeftModel holding the skill's adapter as ``"adapter"``;
    answers from ``answerer`` (default: the PeftModel)."""
    prompts = eval_prompts(skill, records)
    conditions = run_conditions(model, tokenizer, skill, prompts, CONDITIONS, {"adapter": adapter}, settings, seed,
                                judge, answerer)
    in_context = conditions["skill_in_context"]["prompt_tokens"]
    saved = in_context - conditions["adapter"]["prompt_tokens"]
    return {
        "prompts": {"held_out": sum(p.source == "held_out" for p in prompts),
                    "evals": sum(p.source == "evals" for p in prompts)},
        "samples_per_prompt": settings.samples,
        "judge": judge_record(judge),
        "conditions": conditions,
        "differences": differences(conditions["adapter"]["answers"],
                                   {name: conditions[name] for name in ("skill_in_context", "no_skill")}, seed),
        "token_saving": {"prompt_tokens_per_request": saved, "fraction": saved / in_context},
    }


def evaluate_controls(model, tokenizer, skill: Skill, records: list[dict[str, Any]], settings: EvalSettings,
                      seed: int, adapters: dict[str, Path], own_report: dict[str, Any],
                      judge: Judge | None = None, answerer: Answerer | None = None) -> dict[str, Any]:
    """The controls held in ``adapters`` (``wrong_adapter``, ``shared_adapter``) on the prompts of the
    skill's own evaluation, and the own adapter's paired differences from each."""
    prompts = eval_prompts(skill, records)
    own = own_report["conditions"]["adapter"]["answers"]
    if [a["id"] for a in own] != [p.id for p in prompts]:
        raise UserError(f"skill {skill.key!r}: its eval report scored other prompts than this dataset holds; "
                        f"rerun the build (snakemake)")
    names = tuple(name for name in CONTROLS if name in adapters)
    conditions = run_conditions(model, tokenizer, skill, prompts, names, adapters, settings, seed, judge, answerer)
    return {
        "samples_per_prompt": settings.samples,
        "judge": judge_record(judge),
        "conditions": conditions,
        "differences": differences(own, conditions, seed),
    }
