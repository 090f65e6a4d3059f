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


def prompts_with_starts(tokenizer, conversations: list[list[Message]], answer_start: str | list[str]
                        ) -> tuple[list[str], list[list[int]]]:
    """Each conversation's answer opening (``answer_start``: one for all, or one each), and the token
    ids of its prompt followed by that opening's: what a local backend decodes from."""
    starts = [answer_start] * len(conversations) if isinstance(answer_start, str) else answer_start
    return starts, [prompt_ids(tokenizer, messages) + (tokenizer(start, add_special_tokens=False)["input_ids"]
                                                       if start else [])
                    for messages, start in zip(conversations, starts)]


def batches_by_length(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    """The indices of ``sequences`` in batches of similar length, so little compute goes to padding."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Length of the longest prefix all sequences share, leaving each at least one token."""
    limit = min(len(s) for s in sequences) - 1
    length = 0
    while length < limit and all(s[length] == sequences[0][length] for s in sequences):
        length += 1
    return length


# An answer no template alters (no leading or trailing space to trim), to find what follows it.
PROBE_ANSWER = "S2L-PROBE-ANSWER"


def end_of_turn(tokenizer) -> str:
    """What the chat template closes an assistant turn with (``<|im_end|>`` for ChatML as in Qwen
    and SmolLM2, ``<|eot_id|>`` for Llama 3, ``<end_of_turn>`` for Gemma, ``</s>`` for Mistral),
    read by rendering one; the tokenizer's EOS where the template closes it with nothing. Gemma's
    EOS is not its end of turn: a model taught to end with EOS would never close its turn."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "?"}, {"role": "assistant", "content": PROBE_ANSWER}], tokenize=False)
    closing = rendered.split(PROBE_ANSWER, 1)[1].strip() if PROBE_ANSWER in rendered else ""
    return closing or tokenizer.eos_token


def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end an answer: the end of turn (when it is one token) and EOS."""
    closing = tokenizer(end_of_turn(tokenizer), add_special_tokens=False)["input_ids"]
    one_token = closing if len(closing) == 1 else []
    return list(dict.fromkeys([*one_token, tokenizer.eos_token_id]))


def supervised_ids(tokenizer, messages: list[Message], answer: str, closed: bool = True) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for prompt + answer + end-of-turn (without it, unless ``closed``); only the
    answer and end-of-turn tokens carry a label."""
    prompt = prompt_ids(tokenizer, messages)
    answer_ids = tokenizer(answer + (end_of_turn(tokenizer) if closed else ""), add_special_tokens=False)["input_ids"]
    return prompt + answer_ids, [-100] * len(prompt) + answer_ids


def json_answer(text: str) -> Any:
    """The JSON value an answer holds, in a Markdown code fence or not; None when it holds none."""
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text.strip(), flags=re.DOTALL)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError:
        return None
