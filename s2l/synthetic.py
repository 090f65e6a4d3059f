"""Synthetic data: a generator writes requests the skill applies to; a teacher answers each one with
the full SKILL.md as its system prompt and worked examples as earlier turns, and only answers that
pass the skill's checks are kept (the paper's offline phase, with rejection sampling). Both write in
the form the skill's examples share (s2l/form.py): a docstring opens with its quotes, a request that
is a function opens with ``def``.

What the teacher may see is the skill and what the build made for training: the worked examples in
the SKILL.md body and answers it accepted earlier for other training requests. Never an evals.json
case or a held-out request: nothing the evaluation scores reaches the teacher, the generator or the
training data, and a generated request that nearly repeats an evals.json prompt is dropped.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from s2l.chat import Message, json_answer, prompt_ids
from s2l.checks import failed_checks
from s2l.errors import UserError
from s2l.form import Form
from s2l.generation import Backend, Completion, Sampling
from s2l.overlap import NearDuplicates, repeats_a_run, word_ngrams
from s2l.skill import Skill

GENERATOR_SYSTEM = (
    "You write the inputs that developers give an AI coding assistant for this task: {description} "
    "Each input is new, short, of the same kind as the earlier ones, and holds the concrete details the "
    "assistant needs. Write only the input."
)
STRUCTURED = " Answer with a JSON object whose one key, \"request\", holds the input."
REQUEST_SCHEMA = {"type": "object", "properties": {"request": {"type": "string"}}, "required": ["request"],
                  "additionalProperties": False}
NEXT_REQUEST = "Write one new input."
NEXT_REQUEST_ABOUT = "Write one new input, about {area}."
# Every prompt in a round shares one few-shot prefix (computed once, see PrefixCache); the short
# per-prompt area hint and sampling make the requests differ.
AREAS = (
    "a web API", "a command-line tool", "a database layer", "a test suite", "the build system",
    "authentication", "a data pipeline", "a user interface", "the documentation", "performance",
    "a mobile app", "logging", "configuration files", "a payment service", "caching", "a search feature",
    "file uploads", "error handling", "a background job queue", "internationalization",
)
MAX_ROUNDS = 6
# Each round asks for this many times the requests still missing: some come back duplicated, cut off or empty.
REQUEST_SURPLUS = 1.5
MIN_REQUEST_CHARS = 16
SKILL_EXAMPLE = "skill-example-"  # id prefix of the SKILL.md body's own worked examples


class SynthesisError(UserError):
    """The generator wrote nothing the teacher could answer."""


@dataclass(frozen=True)
class Role:
    """One role's backend settings, as recorded in every record's provenance."""

    backend: str
    model: str
    temperature: float
    top_p: float
    max_new_tokens: int
    base_url: str | None = None  # the endpoint (openai backend)
    structured: bool = False  # requests asked for as JSON (generator)

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_new_tokens)


@dataclass(frozen=True)
class TeacherSettings:
    """How the teacher is prompted and its answers chosen (``generation.teacher_*`` in the config)."""

    examples: int = 3  # worked examples shown as earlier turns
    samples: int = 4  # answers tried per request, at most
    filter_by_checks: bool = True  # keep only answers that pass every skill-level check
    # An answer sharing this many consecutive words with SKILL.md repeats a worked example instead of
    # answering its own request: never acceptable (the dataset stage drops such answers too).
    copy_ngram_words: int = 12


@dataclass(frozen=True)
class Answer:
    """The answer kept for one request, and what it took to get it."""

    completion: Completion
    samples: int  # answers tried
    passed: bool | None  # the kept answer passes the skill's checks (None: the skill has none)
    shown: tuple[str, ...]  # ids of the worked examples the teacher saw for it


def worked_examples(skill: Skill) -> list[dict[str, str]]:
    """The skill's own worked examples that pass its checks, with ids: what the teacher starts from."""
    return [{"id": f"{SKILL_EXAMPLE}{number}", **example} for number, example in enumerate(skill.examples)
            if not failed_checks(skill.checks, example["answer"])]


def teacher_conversation(skill: Skill, request: str, examples: list[dict[str, str]] = ()) -> list[Message]:
    """What the teacher sees: the full SKILL.md as its system prompt, worked examples as earlier
    turns, then the request."""
    messages = [{"role": "system", "content": skill.text}]
    for example in examples:
        messages += [{"role": "user", "content": example["request"]},
                     {"role": "assistant", "content": example["answer"]}]
    return messages + [{"role": "user", "content": request}]


def teacher_prompt_tokens(skill: Skill, tokenizer, examples: int = TeacherSettings.examples) -> int:
    """Tokens of the teacher's prompt before the request (the skill and its own worked examples):
    what a skill costs the context window."""
    return len(prompt_ids(tokenizer, teacher_conversation(skill, "", skill.examples[:examples])))


def clean_request(text: str) -> str:
    text = text.strip().strip('"').strip()
    return re.sub(r"^(request|new request)\s*:\s*", "", text, flags=re.IGNORECASE)


def structured_request(text: str) -> str | None:
    """The request in an answer ``{"request": "..."}`` (in a Markdown code fence or not); None when
    the answer is not that JSON."""
    value = json_answer(text)
    request = value.get("request") if isinstance(value, dict) else None
    return request if isinstance(request, str) else None


def generator_prefix(skill: Skill, structured: bool = False) -> list[Message]:
    """The skill's own example requests as earlier turns: a 135M model stays on task far better
    with them than with a description alone (as JSON when requests are asked for as JSON).
    evals.json prompts are never shown."""
    system = GENERATOR_SYSTEM.format(description=skill.description) + (STRUCTURED if structured else "")
    messages = [{"role": "system", "content": system}]
    for example in skill.examples:
        answer = json.dumps({"request": example["request"]}) if structured else example["request"]
        messages += [{"role": "user", "content": NEXT_REQUEST}, {"role": "assistant", "content": answer}]
    return messages


def generate_requests(skill: Skill, backend: Backend, role: Role, count: int, seed: int) -> tuple[list[str], Counter]:
    """Up to ``count`` distinct requests, none a near-duplicate of another, of an evals.json prompt or
    of the skill's own examples; and the count of generated texts dropped, per reason. Each round
    asks again for what is still missing (a malformed structured answer among it), up to
    ``MAX_ROUNDS`` rounds."""
    evals = NearDuplicates([case["prompt"] for case in skill.evals])
    kept = NearDuplicates([example["request"] for example in skill.examples])
    requests: list[str] = []
    dropped: Counter[str] = Counter()
    prefix = generator_prefix(skill, role.structured)
    # A JSON answer has no form to open or end with.
    form = Form() if role.structured else Form.shared_by([example["request"] for example in skill.examples])
    for round_number in range(MAX_ROUNDS):
        missing = count - len(requests)
        if missing <= 0:
            break
        rng = random.Random(f"{seed}-{round_number}")
        conversations = [prefix + [{"role": "user", "content": NEXT_REQUEST_ABOUT.format(area=rng.choice(AREAS))}]
                         for _ in range(math.ceil(missing * REQUEST_SURPLUS))]
        completions = backend.complete(conversations, role.sampling, seed + 1000 * round_number,
                                       desc=f"{skill.key}: requests", answer_start=form.opening,
                                       stop=form.ending, json_schema=REQUEST_SCHEMA if role.structured else None)
        for completion in map(form.complete, completions):
            parsed = structured_request(completion.text) if role.structured else completion.text
            request = clean_request(parsed or "")
            reason = ("cut_off" if completion.finish_reason != "stop" else
                      "malformed" if parsed is None else
                      "too_short" if len(request) < MIN_REQUEST_CHARS else
                      "near_evals_prompt" if evals.find(request) else
                      "near_duplicate" if kept.find(request) else None)
            if reason:
                dropped[reason] += 1
            else:
                kept.add(request)
                requests.append(request)
    return requests[:count], dropped


def answer_requests(
    skill: Skill,
    requests: list[str],
    ids: list[str],
    backend: Backend,
    role: Role,
    settings: TeacherSettings,
    seed: int,
    shown: list[dict[str, str]],
    learn: bool,
    desc: str,
) -> list[Answer]:
    """Rejection sampling: each request gets up to ``settings.samples`` answers and keeps the first
    that ends its turn, does not copy the skill text and passes every skill-level check (with
    filtering off, the first that ends its turn without copying). Each round shows the teacher
    ``settings.examples`` worked examples from ``shown``; with ``learn``, answers accepted in a
    round join ``shown`` for the next (training requests only: a held-out answer must never teach
    the teacher)."""
    skill_ngrams = word_ngrams(skill.text, settings.copy_ngram_words)
    form = Form.shared_by([example["answer"] for example in worked_examples(skill)])

    def acceptable(answer: Answer) -> bool:
        ended = answer.completion.finish_reason == "stop"
        copied = repeats_a_run(answer.completion.text, skill_ngrams, settings.copy_ngram_words)
        return ended and not copied and (answer.passed is not False or not settings.filter_by_checks)

    kept: list[Answer | None] = [None] * len(requests)
    tries = [0] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(settings.samples):
        if not pending:
            break
        rng = random.Random(f"{seed}-{desc}-{attempt}")
        # One set of examples per round: the whole round shares one prompt prefix, computed once.
        examples = rng.sample(shown, min(settings.examples, len(shown)))
        completions = backend.complete(
            [teacher_conversation(skill, requests[i], examples) for i in pending],
            role.sampling,
            seed + 7919 * attempt,
            desc=f"{skill.key}: {desc}" + (f" (try {attempt + 1})" if attempt else ""),
            answer_start=form.opening,
            stop=form.ending,
        )
        for index, completion in zip(pending, map(form.complete, completions)):
            tries[index] += 1
            passed = None if not skill.checks else (
                completion.finish_reason == "stop" and not failed_checks(skill.checks, completion.text))
            answer = Answer(completion, tries[index], passed, tuple(example["id"] for example in examples))
            # Keep an acceptable answer; until there is one, the latest that at least ended its turn.
            if acceptable(answer) or kept[index] is None or kept[index].completion.finish_reason == "length":
                kept[index] = answer
            if learn and acceptable(answer) and passed:
                shown = shown + [{"id": ids[index], "request": requests[index], "answer": completion.text}]
        pending = [i for i in pending if not acceptable(kept[i])]
    return [Answer(answer.completion, tries[i], answer.passed, answer.shown)  # type: ignore[union-attr]
            for i, answer in enumerate(kept)]


def synthesize(
    skill: Skill,
    generator: tuple[Backend, Role],
    teacher: tuple[Backend, Role],
    train_examples: int,
    eval_examples: int,
    seed: int,
    settings: TeacherSettings = TeacherSettings(),
) -> Iterator[dict[str, Any]]:
    """Yield one record per request: train split first, then the disjoint eval split."""
    generator_backend, generator_role = generator
    teacher_backend, teacher_role = teacher
    asked = train_examples + eval_examples
    requests, dropped = generate_requests(skill, generator_backend, generator_role, asked, seed)
    if not requests:
        raise SynthesisError(
            f"skill {skill.key!r}: the generator wrote no usable request ({asked} asked, in {MAX_ROUNDS} rounds; "
            f"dropped: {dict(dropped) or 'none'}; a request must end within generation.generator.max_new_tokens="
            f"{generator_role.max_new_tokens} tokens, hold at least {MIN_REQUEST_CHARS} characters and not nearly "
            f"repeat another request or an evals.json prompt)")
    # If the generator fell short, both splits shrink in proportion.
    train_count = min(train_examples, round(len(requests) * train_examples / asked))
    ids = [f"{skill.key}-{index:04d}" for index in range(len(requests))]
    seeds = worked_examples(skill)
    answers = answer_requests(skill, requests[:train_count], ids[:train_count], teacher_backend, teacher_role,
                              settings, seed, seeds, learn=True, desc="answers")
    shown = seeds + [{"id": ids[index], "request": requests[index], "answer": answer.completion.text}
                     for index, answer in enumerate(answers) if answer.passed]
    answers += answer_requests(skill, requests[train_count:], ids[train_count:], teacher_backend, teacher_role,
                               settings, seed, shown, learn=False, desc="held-out answers")
    teacher_record = {**asdict(teacher_role), **asdict(settings)}
    for index, (request, answer) in enumerate(zip(requests, answers)):
        yield {
            "id": ids[index],
            "split": "train" if index < train_count else "eval",
            "request": request,
            "answer": answer.completion.text,
            "finish_reason": answer.completion.finish_reason,
            "samples": answer.samples,
            "passed_checks": answer.passed,
            "shown_examples": list(answer.shown),
            "skill": skill.identity,
            "generator": {**asdict(generator_role), "requests_dropped": dict(sorted(dropped.items()))},
            "teacher": teacher_record,
            "seed": seed,
        }
