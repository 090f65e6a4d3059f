"""Teacher-forced scoring: mean negative log-likelihood of reference answers."""

from __future__ import annotations

import torch

from s2l.models.chat import Message, prompt_ids, supervised_ids
from s2l.models.generation import PrefixCache, pad_after_prefix


@torch.inference_mode()
def answer_nll(model, tokenizer, conversations: list[list[Message]], answers: list[str], batch_size: int = 8,
               whole: bool = True) -> list[float]:
    """Per-token NLL of each answer given its conversation (answer tokens + end-of-turn only). With
    ``whole`` off, the answers are openings: no end of turn follows them, and the NLL is summed over
    their tokens (the negative log-likelihood of the text, comparable across lengths)."""
    if not answers:
        return []
    encoded = [supervised_ids(tokenizer, messages, answer, closed=whole) for messages, answer in zip(conversations, answers)]
    # The cached prefix must end inside every prompt, so it is taken over the prompts alone.
    prefix = PrefixCache(model, [prompt_ids(tokenizer, messages) for messages in conversations])
    losses: list[float] = []
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        input_ids, attention_mask = pad_after_prefix([ids for ids, _ in batch], prefix.length, tokenizer.pad_token_id,
                                                     model.device)
        labels, _ = pad_after_prefix([labels for _, labels in batch], prefix.length, -100, model.device)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=input_ids[:, prefix.length :],
            attention_mask=attention_mask,
            position_ids=position_ids[:, prefix.length :],
            cache=prefix.for_batch(len(batch)),
        ).logits.float()
        # Position t predicts token t+1; the prefix holds prompt tokens only, which carry no label.
        targets = labels[:, prefix.length + 1 :]
        token_nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), targets, ignore_index=-100, reduction="none"
        )
        counted = (targets != -100).sum(-1).clamp(min=1) if whole else 1
        losses += (token_nll.sum(-1) / counted).tolist()
    return losses
