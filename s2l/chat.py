"""Chat formatting and tokenization shared by generation, dataset checks, training and scoring."""

from __future__ import annotations

import json
import re
from typing import Any

Message = dict[str, str]


def conversation(request: str, system: str | None = None) -> list[Message]:
    """The messages for one request; ``system`` carries the skill text when it is in context."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": request}]


def prompt_ids(tokenizer, messages: list[Message]) -> list[int]:
    """Token ids of the chat prompt, ending where the assistant's answer starts."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def supervised_ids(tokenizer, messages: list[Message], answer: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for prompt + answer + end-of-turn; only answer tokens carry a label."""
    prompt = prompt_ids(tokenizer, messages)
    answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return prompt + answer_ids, [-100] * len(prompt) + answer_ids


def json_answer(text: str) -> Any:
    """The JSON value an answer holds, in a Markdown code fence or not; None when it holds none."""
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text.strip(), flags=re.DOTALL)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError:
        return None
