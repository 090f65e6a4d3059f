"""``s2l cost``: before anything is sent, how many requests and tokens a full build asks of each
role, and what that costs at the configured prices.

A range, not a forecast: the fewest requests is one round of generation and one answer per request;
the most is every re-ask round and every rejection-sampling try. Tokens are counted at about four
characters a token (an endpoint's tokenizer is not known here) for the most requests, with every
answer at its full ``max_new_tokens``. Requests already in the request cache cost nothing; which
those are is known only as the build goes.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import Any

from s2l.chat import Message
from s2l.config import ENDPOINT_ROLES
from s2l.generation import token_cost
from s2l.skill import Skill
from s2l.synthetic import MAX_ROUNDS, REQUEST_SURPLUS, generator_prefix, teacher_conversation, worked_examples

CHARS_PER_TOKEN = 4


def approximate_tokens(messages: list[Message]) -> int:
    return math.ceil(sum(len(message["content"]) for message in messages) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class RoleEstimate:
    requests_min: int
    requests_max: int
    prompt_tokens_max: int
    completion_tokens_max: int

    def cost_max(self, price: dict[str, float] | None) -> float | None:
        return token_cost(self.prompt_tokens_max, self.completion_tokens_max, price)


def estimate(skill: Skill, generation: dict[str, Any]) -> dict[str, RoleEstimate]:
    """Per role, the requests and tokens one skill's ``synthesize`` asks for."""
    asked = generation["train_examples"] + generation["eval_examples"]
    generator, teacher = generation["generator"], generation["teacher"]
    first_round = math.ceil(asked * REQUEST_SURPLUS)
    # Later rounds ask only for what is missing, at most all of it again.
    generated = first_round * MAX_ROUNDS
    generator_prompt = approximate_tokens(generator_prefix(skill, generator.get("structured", False))) + 16
    answered = asked * generation["teacher_samples"]
    search = generation["seed_search"]
    if len(worked_examples(skill)) < generation["teacher_examples"] and skill.checks and generation["filter_by_checks"]:
        # A seed search runs first: at most its whole budget of answers, and its requests each round.
        generated += search["rounds"] * math.ceil(search["requests"] * REQUEST_SURPLUS) * MAX_ROUNDS
        answered += search["requests"] * search["samples"] * search["rounds"]
    # Worked examples later drawn from accepted answers are about as long as the skill's own.
    teacher_prompt = approximate_tokens(teacher_conversation(
        skill, "", worked_examples(skill)[: generation["teacher_examples"]])) + generator["max_new_tokens"]
    return {
        "generator": RoleEstimate(first_round, generated, generated * generator_prompt,
                                  generated * generator["max_new_tokens"]),
        "teacher": RoleEstimate(asked, answered, answered * teacher_prompt, answered * teacher["max_new_tokens"]),
    }


def cost_table(skills: list[Skill], generation: dict[str, Any]) -> list[tuple[str, str, RoleEstimate]]:
    """(skill, role, estimate) per skill and role, then a total per role under the skill ``(all)``."""
    rows = [(skill.key, role, guess) for skill in skills for role, guess in estimate(skill, generation).items()]
    for role in ENDPOINT_ROLES:
        role_rows = [astuple(guess) for _, name, guess in rows if name == role]
        rows.append(("(all)", role, RoleEstimate(*(sum(column) for column in zip(*role_rows)))))
    return rows
