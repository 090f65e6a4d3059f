"""Chat templates of the model families s2l trains, and tiny random models of those families.

The templates are written to each family's published turn format (reduced to system, user and
assistant turns), on the embedded model's tokenizer with the family's turn markers added as
special tokens; the expected renderings are written out by hand. The hub is unreachable here and
no family's real template file ships with transformers."""

from __future__ import annotations

from pathlib import Path

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


# A tiny randomly initialised model per family (transformers model type, chat template family):
# the real architecture code with a few small layers, saved with a tokenizer that has the template.
TINY_BASES = {"qwen3": ("qwen3", "chatml"), "llama": ("llama", "llama3"), "gemma": ("gemma3_text", "gemma")}


def save_tiny_base(base_model_dir: Path, family: str, out: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, template = TINY_BASES[family]
    tokenizer = family_tokenizer(base_model_dir, template)
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                  max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                  tie_word_embeddings=True)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
