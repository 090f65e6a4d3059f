"""The label mask and the stop tokens on each family's chat template: ChatML (Qwen2/Qwen3, SmolLM2),
Llama 3, Gemma and Mistral. The templates below are written to each family's published turn format
(reduced to user and assistant turns), on the embedded model's tokenizer with the family's turn
markers added as special tokens; the expected renderings are written out by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from s2l.chat import end_of_turn, stop_token_ids, supervised_ids

FAMILIES = {
    "chatml": {
        "template": "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
                    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "special": {},
        "text": "<|im_start|>user\nWrite it.<|im_end|>\n<|im_start|>assistant\nfeat: add x<|im_end|>",
        "end": "<|im_end|>",
    },
    "llama3": {
        "template": "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
                    "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
                    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
                    "{% endif %}",
        "special": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                    "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
        "text": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWrite it.<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\nfeat: add x<|eot_id|>",
        "end": "<|eot_id|>",
    },
    "gemma": {
        "template": "{{ bos_token }}{% for m in messages %}"
                    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
                    "{{ '<start_of_turn>' + role + '\\n' + m['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
                    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
        "special": {"bos_token": "<bos>", "eos_token": "<eos>",
                    "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]},
        "text": "<bos><start_of_turn>user\nWrite it.<end_of_turn>\n<start_of_turn>model\nfeat: add x<end_of_turn>",
        "end": "<end_of_turn>",
    },
    "mistral": {
        "template": "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
                    "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}"
                    "{% endfor %}",
        "special": {"bos_token": "<s>", "eos_token": "</s>"},
        "text": "<s>[INST] Write it. [/INST]feat: add x</s>",
        "end": "</s>",
    },
}


def family_tokenizer(base_model_dir: Path, family: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    tokenizer.add_special_tokens(FAMILIES[family]["special"])
    tokenizer.chat_template = FAMILIES[family]["template"]
    return tokenizer


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
    from s2l.model import prepare_base_model

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
