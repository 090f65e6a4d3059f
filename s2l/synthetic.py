"""Synthetic data: a generator writes requests the skill applies to; a teacher answers each one
with the full SKILL.md as its system prompt (the paper's offline phase)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from s2l.errors import UserError
from s2l.chat import Message, conversation, prompt_ids
from s2l.generation import Backend, Completion, Sampling
from s2l.skill import Skill

GENERATOR_SYSTEM = (
    "You write realistic requests that software developers send to an AI coding assistant. "
    "Every request is for this task: {description} "
    "Each request is different and includes the concrete details the assistant needs."
)
NEXT_REQUEST = "Write one new request."
NEXT_REQUEST_ABOUT = "Write one new request, about {area}."
# Every prompt in a round shares one few-shot prefix (computed once, see PrefixCache); the short
# per-prompt area hint and sampling make the requests differ.
AREAS = (
    "a web API", "a command-line tool", "a database layer", "a test suite", "the build system",
    "authentication", "a data pipeline", "a user interface", "the documentation", "performance",
    "a mobile app", "logging", "configuration files", "a payment service", "caching", "a search feature",
    "file uploads", "error handling", "a background job queue", "internationalization",
)
FEW_SHOT_EXAMPLES = 4
MAX_ROUNDS = 4
MIN_REQUEST_CHARS = 16


class SynthesisError(UserError):
    """The generator wrote nothing the teacher could answer."""


def teacher_conversation(skill: Skill, request: str) -> list[Message]:
    """What the teacher sees: the full SKILL.md as its system prompt, then the request."""
    return conversation(request, system=skill.text)


def teacher_prompt_tokens(skill: Skill, tokenizer) -> int:
    """Tokens of the teacher's prompt before the request: what a skill costs the context window."""
    return len(prompt_ids(tokenizer, teacher_conversation(skill, "")))


@dataclass(frozen=True)
class Role:
    """One role's backend settings, as recorded in every record's provenance."""

    backend: str
    model: str
    temperature: float
    top_p: float
    max_new_tokens: int

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_new_tokens)


def normalize(text: str) -> str:
    """Key for duplicate detection: case and whitespace do not make a request new."""
    return " ".join(text.lower().split())


def clean_request(text: str) -> str:
    text = text.strip().strip('"').strip()
    return re.sub(r"^(request|new request)\s*:\s*", "", text, flags=re.IGNORECASE)


def few_shot_prefix(skill: Skill, rng: random.Random) -> list[Message]:
    """Examples as earlier turns: a 135M model stays on task far better than with a list."""
    examples = [case["prompt"] for case in skill.evals]
    messages = [{"role": "system", "content": GENERATOR_SYSTEM.format(description=skill.description)}]
    for example in rng.sample(examples, min(FEW_SHOT_EXAMPLES, len(examples))):
        messages += [{"role": "user", "content": NEXT_REQUEST}, {"role": "assistant", "content": example}]
    return messages


def generate_requests(skill: Skill, backend: Backend, role: Role, count: int, seed: int) -> list[str]:
    """Up to ``count`` distinct requests, none equal to an evals.json prompt."""
    seen = {normalize(case["prompt"]) for case in skill.evals}
    requests: list[str] = []
    for round_number in range(MAX_ROUNDS):
        missing = count - len(requests)
        if missing <= 0:
            break
        # Ask for a quarter more than missing: some come back duplicated, cut off or empty.
        batch = math.ceil(missing * 1.25)
        rng = random.Random(f"{seed}-{round_number}")
        prefix = few_shot_prefix(skill, rng)
        conversations = [
            prefix + [{"role": "user", "content": NEXT_REQUEST_ABOUT.format(area=rng.choice(AREAS))}]
            for _ in range(batch)
        ]
        completions = backend.complete(
            conversations, role.sampling, seed + 1000 * round_number, desc=f"{skill.key}: requests"
        )
        for completion in completions:
            request = clean_request(completion.text)
            key = normalize(request)
            if completion.finish_reason == "stop" and len(request) >= MIN_REQUEST_CHARS and key not in seen:
                seen.add(key)
                requests.append(request)
    return requests[:count]


def answer_requests(
    skill: Skill, requests: list[str], backend: Backend, role: Role, max_attempts: int, seed: int
) -> tuple[list[Completion], list[int]]:
    """Teacher answers with the full SKILL.md as system prompt; an answer cut off at
    max_new_tokens is asked again (new seed), up to ``max_attempts`` times in all."""
    answers: list[Completion | None] = [None] * len(requests)
    attempts = [0] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(max_attempts):
        if not pending:
            break
        completions = backend.complete(
            [teacher_conversation(skill, requests[i]) for i in pending],
            role.sampling,
            seed + 7919 * attempt,
            desc=f"{skill.key}: answers" + (f" (attempt {attempt + 1})" if attempt else ""),
        )
        for index, completion in zip(pending, completions):
            answers[index], attempts[index] = completion, attempt + 1
        pending = [i for i in pending if answers[i].finish_reason == "length"]
    return answers, attempts  # type: ignore[return-value]


def synthesize(
    skill: Skill,
    generator: tuple[Backend, Role],
    teacher: tuple[Backend, Role],
    train_examples: int,
    eval_examples: int,
    seed: int,
    teacher_attempts: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yield one record per request: train split first, then the disjoint eval split."""
    generator_backend, generator_role = generator
    teacher_backend, teacher_role = teacher
    asked = train_examples + eval_examples
    requests = generate_requests(skill, generator_backend, generator_role, asked, seed)
    if not requests:
        raise SynthesisError(
            f"skill {skill.key!r}: the generator wrote no usable request ({asked} asked, in {MAX_ROUNDS} rounds; "
            f"each must end within generation.generator.max_new_tokens={generator_role.max_new_tokens} tokens, "
            f"hold at least {MIN_REQUEST_CHARS} characters and differ from the others and from evals.json)")
    answers, attempts = answer_requests(skill, requests, teacher_backend, teacher_role, teacher_attempts, seed)
    # If the generator fell short, both splits shrink in proportion.
    train_count = min(train_examples, round(len(requests) * train_examples / (train_examples + eval_examples)))
    for index, (request, answer, attempt_count) in enumerate(zip(requests, answers, attempts)):
        split = "train" if index < train_count else "eval"
        yield {
            "id": f"{skill.key}-{index:04d}",
            "split": split,
            "request": request,
            "answer": answer.text,
            "finish_reason": answer.finish_reason,
            "attempts": attempt_count,
            "skill": skill.identity,
            "generator": asdict(generator_role),
            "teacher": asdict(teacher_role),
            "seed": seed,
        }
