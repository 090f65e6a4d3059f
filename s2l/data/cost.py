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

from s2l.data.synthetic import MAX_ROUNDS, REQUEST_SURPLUS, generator_prefix, teacher_conversation, worked_examples
from s2l.engine.config import ENDPOINT_ROLES
from s2l.models.backend import token_cost
from s2l.models.chat import Message
from s2l.skills.skill import Skill

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


def estimate(skill: Skill, synthesis: dict[str, Any]) -> dict[str, RoleEstimate]:
    """Per role, the requests and tokens one skill's ``synthesize`` asks for."""
    asked = synthesis["train_examples"] + synthesis["eval_examples"]
    generator, teacher = synthesis["generator"], synthesis["teacher"]
    first_round = math.ceil(asked * REQUEST_SURPLUS)
    # Later rounds ask only for what is missing, at most all of it again.
    generated = first_round * MAX_ROUNDS
    generator_prompt = approximate_tokens(generator_prefix(skill, generator.get("structured", False))) + 16
    answered = asked * synthesis["teacher_samples"]
    search = synthesis["seed_search"]
    if len(worked_examples(skill)) < synthesis["teacher_examples"] and skill.checks and synthesis["filter_by_checks"]:
        # A seed search runs first: at most its whole budget of answers, and its requests each round.
        generated += search["rounds"] * math.ceil(search["requests"] * REQUEST_SURPLUS) * MAX_ROUNDS
        answered += search["requests"] * search["samples"] * search["rounds"]
    # Worked examples later drawn from accepted answers are about as long as the skill's own.
    teacher_prompt = approximate_tokens(teacher_conversation(
        skill, "", worked_examples(skill)[: synthesis["teacher_examples"]])) + generator["max_new_tokens"]
    return {
        "generator": RoleEstimate(first_round, generated, generated * generator_prompt,
                                  generated * generator["max_new_tokens"]),
        "teacher": RoleEstimate(asked, answered, answered * teacher_prompt, answered * teacher["max_new_tokens"]),
    }


def cost_table(skills: list[Skill], synthesis: dict[str, Any]) -> list[tuple[str, str, RoleEstimate]]:
    """(skill, role, estimate) per skill and role, then a total per role under the skill ``(all)``."""
    rows = [(skill.key, role, guess) for skill in skills for role, guess in estimate(skill, synthesis).items()]
    for role in ENDPOINT_ROLES:
        role_rows = [astuple(guess) for _, name, guess in rows if name == role]
        rows.append(("(all)", role, RoleEstimate(*(sum(column) for column in zip(*role_rows)))))
    return rows
