"""The structural check of adapter folders against vLLM's LoRA loader, on adapters PEFT itself
saves from a tiny randomly initialised Llama (the built adapters are checked in test_workflow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s2l.engine.config import default_config
from s2l.models.serving import vllm_lora_problems, vllm_max_lora_rank


def save_adapter(folder: Path, **lora: object) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1))
    settings = {"r": 16, "lora_alpha": 32, "target_modules": default_config()["lora"]["target_modules"], **lora}
    get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **settings)).save_pretrained(folder)
    return folder


def edit_config(folder: Path, **fields: object) -> None:
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def test_an_all_linear_adapter_passes(tmp_path: Path) -> None:
    adapter = save_adapter(tmp_path / "adapter")
    assert vllm_lora_problems(adapter) == []
    listed = subprocess.run([sys.executable, "-m", "s2l", "check-adapter", str(adapter)], capture_output=True,
                            text=True)
    assert listed.returncode == 0 and "--max-lora-rank 16" in listed.stdout


def test_files_beside_the_adapter_folders_are_skipped_and_a_missing_folder_fails(tmp_path: Path) -> None:
    # What `s2l check-adapter build/adapters/*` is given after a build: folders and their metrics files.
    adapter = save_adapter(tmp_path / "adapters" / "skill")
    metrics = tmp_path / "adapters" / "skill.metrics.jsonl"
    metrics.write_text('{"step": 1}\n')
    listed = subprocess.run([sys.executable, "-m", "s2l", "check-adapter", str(adapter), str(metrics)],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{adapter}: passes the structural checks of vLLM's LoRA loader")
    assert f"{metrics}: skipped, not a folder" in listed.stderr
    missing = subprocess.run([sys.executable, "-m", "s2l", "check-adapter", str(tmp_path / "nothing")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and f"{tmp_path / 'nothing'}: no such folder" in missing.stderr


def test_embedding_and_lm_head_deltas_are_refused(tmp_path: Path) -> None:
    adapter = save_adapter(tmp_path / "adapter", target_modules=["q_proj", "embed_tokens"],
                           modules_to_save=["lm_head"])
    problems = vllm_lora_problems(adapter)
    assert "adapter_config.json: modules_to_save: ['lm_head'], must be empty" in problems
    assert any(p.startswith("adapter_config.json: target_modules: embed_tokens not a decoder") for p in problems)
    assert any("model.embed_tokens.lora_embedding_A" in p and "not a LoRA A/B weight" in p for p in problems)
    assert any("lm_head" in p and p.startswith("adapter_model.safetensors") for p in problems)
    listed = subprocess.run([sys.executable, "-m", "s2l", "check-adapter", str(adapter)], capture_output=True,
                            text=True)
    assert listed.returncode == 1 and f"{adapter}: adapter_config.json: modules_to_save" in listed.stderr


@pytest.mark.parametrize(("fields", "expected"), [
    ({"r": 1024}, "adapter_config.json: r: 1024, not a rank from 1 to 512"),
    ({"r": 8}, "adapter_model.safetensors: base_model.model.model.layers.0.mlp.down_proj.lora_A.weight: "
               "shape [16, 64] does not hold rank 8"),
    ({"use_dora": True}, "adapter_config.json: use_dora: DoRA is not supported"),
    ({"bias": "all"}, "adapter_config.json: bias: adapter biases are not loaded"),
    ({"peft_type": "IA3"}, "adapter_config.json: peft_type: 'IA3', not 'LORA'"),
])
def test_what_vllm_refuses_is_named(tmp_path: Path, fields: dict, expected: str) -> None:
    adapter = save_adapter(tmp_path / "adapter")
    edit_config(adapter, **fields)
    assert expected in vllm_lora_problems(adapter)


def test_a_missing_field_or_file_is_named(tmp_path: Path) -> None:
    adapter = save_adapter(tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    del config["lora_alpha"]
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    (adapter / "adapter_model.safetensors").unlink()
    assert vllm_lora_problems(adapter) == ["adapter_config.json: lora_alpha: missing",
                                           "adapter_model.safetensors: missing"]
    (adapter / "adapter_config.json").write_text("{")
    assert vllm_lora_problems(adapter)[0].startswith("adapter_config.json: unparseable JSON")
    assert vllm_lora_problems(tmp_path) == ["adapter_config.json: missing"]


@pytest.mark.parametrize(("rank", "max_rank"), [(1, 1), (4, 8), (16, 16), (17, 32), (300, 320), (512, 512),
                                                (513, None)])
def test_the_smallest_max_lora_rank_that_serves_a_rank(rank: int, max_rank: int | None) -> None:
    assert vllm_max_lora_rank(rank) == max_rank


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "gemma2", "gemma3_text", "mistral"])
def test_all_linear_targets_the_decoder_projections_of_each_family(tmp_path: Path, family: str) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(family, vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    model = get_peft_model(AutoModelForCausalLM.from_config(config),
                           LoraConfig(r=16, lora_alpha=32, target_modules=default_config()["lora"]["target_modules"], task_type="CAUSAL_LM"))
    wrapped = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    model.save_pretrained(tmp_path / family)
    assert vllm_lora_problems(tmp_path / family) == []
