"""The label mask and the stop tokens on each family's chat template: ChatML (Qwen2/Qwen3, SmolLM2),
Llama 3, Gemma and Mistral (the templates and their hand-written renderings: tests/families.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from families import FAMILIES, family_tokenizer

from s2l.models.chat import end_of_turn, stop_token_ids, supervised_ids


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_cover_exactly_the_answer_and_the_end_of_turn(base_model_dir: Path, family: str) -> None:
    tokenizer = family_tokenizer(base_model_dir, family)
    expected = FAMILIES[family]
    assert end_of_turn(tokenizer) == expected["end"]
    ids, labels = supervised_ids(tokenizer, [{"role": "user", "content": "Write it."}], "feat: add x")
    assert tokenizer.decode(ids) == expected["text"]
    labelled = [index for index, label in enumerate(labels) if label != -100]
    # One run at the end of the sequence, holding the answer's tokens and the turn's closing token.
    assert labelled == list(range(len(ids) - len(labelled), len(ids)))
    assert [ids[index] for index in labelled] == [labels[index] for index in labelled]
    assert tokenizer.decode([ids[index] for index in labelled]) == "feat: add x" + expected["end"]
    assert ids[-1] == tokenizer.convert_tokens_to_ids(expected["end"])


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_stop_at_the_end_of_turn_and_at_eos(base_model_dir: Path, family: str) -> None:
    tokenizer = family_tokenizer(base_model_dir, family)
    expected = [tokenizer.convert_tokens_to_ids(FAMILIES[family]["end"])]
    if tokenizer.eos_token != FAMILIES[family]["end"]:
        expected.append(tokenizer.eos_token_id)  # Llama 3 and Gemma: EOS is not the end of their turn
    assert stop_token_ids(tokenizer) == expected


def test_a_base_model_without_a_chat_template_is_refused(base_model_dir: Path, tmp_path: Path) -> None:
    from s2l.errors import UserError
    from s2l.models.model import prepare_base_model

    source = tmp_path / "base"
    shutil.copytree(base_model_dir, source)
    (source / "chat_template.jinja").unlink(missing_ok=True)
    config = source / "tokenizer_config.json"
    settings = json.loads(config.read_text())
    settings.pop("chat_template", None)
    config.write_text(json.dumps(settings))
    with pytest.raises(UserError, match=rf"base_model.source {source}: its tokenizer has no chat template"):
        prepare_base_model(str(source), "plain", tmp_path / "out", "0" * 64)
    assert not (tmp_path / "out").exists()
