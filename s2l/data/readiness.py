"""What a build will make of a skill, said before it runs (``s2l check-skill``): the worked examples
found and where, the counter-examples set apart, the form the answers will take, the checks that
filter them, whether a seed search will run, and a one-line verdict."""

from __future__ import annotations

from typing import Any

from s2l.data.form import skill_form
from s2l.models.constrain import CheckConstraint
from s2l.skills.skill import Skill

STYLE_NAMES = {"labels": "labelled", "label-line": "a label line and its answer", "fenced": "a fenced block",
               "table": "a table row", "marked": "marked ✓", "inline": "inline code"}


def _lines(examples: list[dict[str, Any]]) -> str:
    return ", ".join(f"line {example['line']} ({STYLE_NAMES.get(example['style'], example['style'])})"
                     for example in examples)


def readiness(skill: Skill, synthesis: dict[str, Any], judge: dict[str, Any] | None) -> tuple[list[str], str]:
    """The report's lines for one skill, and its verdict line: ``ready``, ``ready after a seed search``,
    ``judged`` or ``unfiltered``. ``synthesis`` and ``judge`` are the config's ``synthesize`` and
    ``evaluate.judge``."""
    from s2l.data.synthetic import task_request  # pulls in torch: only when a report is made

    pairs = skill.worked_pairs
    answers_only = [example for example in skill.examples if not example["request"]]
    wanted, search = synthesis["teacher_examples"], synthesis["seed_search"]
    form = skill_form(skill)
    lines = [
        f"worked examples: {len(pairs)} with a request" + (f": {_lines(pairs)}" if pairs else ""),
        f"answers shown without a request: {len(answers_only)}" + (f": {_lines(answers_only)}" if answers_only else ""),
        f"counter-examples (never shown): {len(skill.counter_examples)}" + (
            ": " + ", ".join(f"line {example['line']}" for example in skill.counter_examples)
            if skill.counter_examples else ""),
        "form: " + (f"answers open with {form.opening!r}" if form.opening else
                    "answers open with the one each request calls for, drawn from the calibrated likelihoods of "
                    + ", ".join(map(repr, form.alternatives))
                    if form.alternatives else "no shared opening") + (
            f", end at {form.ending!r}" if form.ending else ""),
        f"checks: {len(skill.checks)} skill-level, {len(skill.evals)} evals.json case(s)",
        f"requests: the generator imitates the {len(pairs)} the skill shows" if pairs else
        f"requests: none shown; the generator describes a change and each request asks for the task on it "
        f"({task_request(skill, '<the change>')!r})",
    ]
    filtered = synthesis["filter_by_checks"] and (bool(skill.checks) or judge is not None)
    held = CheckConstraint.of_checks(skill.checks) if synthesis["hold_to_checks"] and filtered else None
    if held:
        lines.append(f"decoding: the local teacher is held to the {len(held.patterns)} check(s) anchored at the "
                     f"answer's start")
    # An answer shown without its request is shown too (as the answer to the description's task).
    missing = max(0, wanted - len(skill.examples))
    budget = search["requests"] * search["samples"] * search["rounds"]
    if missing and filtered and search["rounds"]:
        lines.append(f"seed search: will look for {missing} more worked example(s) (synthesize.teacher_examples "
                     f"{wanted}), up to {budget} answers")
    elif missing:
        lines.append(f"seed search: none (nothing grades the answers, or synthesize.seed_search.rounds is 0); the "
                     f"teacher is shown {len(skill.examples)} of {wanted} worked examples")
    if not filtered:
        verdict = ("unfiltered", "the teacher's answers are kept unfiltered: add checks to evals/evals.json or "
                                 "configure evaluate.judge")
    elif not skill.checks:
        verdict = ("judged", f"no machine checks; the judge ({judge['backend']}) grades each answer against the "
                             f"skill's rules")
    elif missing and search["rounds"]:
        verdict = ("ready after a seed search", f"{len(skill.examples)} worked example(s); a seed search finds the "
                                                f"other {missing}, and {len(skill.checks)} checks filter the answers")
    else:
        verdict = ("ready", f"{min(len(skill.examples), wanted)} worked examples shown to the teacher, "
                            f"{len(skill.checks)} checks filter its answers")
    return lines, f"verdict: {verdict[0]} ({verdict[1]})"
