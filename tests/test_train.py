"""Precision selection: the CUDA path (QLoRA) is chosen by logic that runs on any machine."""

import pytest

from s2l.train import select_precision


def test_auto_uses_qlora_on_cuda_and_fp32_on_cpu() -> None:
    cuda = select_precision("auto", cuda_available=True)
    assert (cuda.device, cuda.quantize_4bit, cuda.compute_dtype) == ("cuda", True, "bfloat16")
    cpu = select_precision("auto", cuda_available=False)
    assert (cpu.device, cpu.quantize_4bit, cpu.compute_dtype) == ("cpu", False, "float32")
    assert "nf4" in cuda.label and "cpu" in cpu.label


def test_none_never_quantizes() -> None:
    assert not select_precision("none", cuda_available=True).quantize_4bit


def test_nf4_without_cuda_and_unknown_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        select_precision("nf4", cuda_available=False)
    with pytest.raises(ValueError, match="not one of"):
        select_precision("int8", cuda_available=True)


def test_a_4bit_base_is_nf4_with_double_quantisation_and_bf16_compute() -> None:
    from transformers import BitsAndBytesConfig

    from s2l.train import nf4_settings

    assert nf4_settings(select_precision("auto", cuda_available=False)) is None
    assert nf4_settings(select_precision("none", cuda_available=True)) is None
    config = BitsAndBytesConfig(**nf4_settings(select_precision("auto", cuda_available=True)))
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert str(config.bnb_4bit_compute_dtype) == "torch.bfloat16"


def test_cuda_trains_with_a_paged_8bit_adamw_and_activation_checkpointing(tmp_path) -> None:
    from transformers import Trainer, TrainingArguments

    from s2l.train import device_arguments

    cuda = device_arguments(select_precision("auto", cuda_available=True))
    assert cuda == {"optim": "paged_adamw_8bit", "activation_checkpointing": True, "bf16": True}
    assert device_arguments(select_precision("none", cuda_available=True))["bf16"] is False
    assert device_arguments(select_precision("auto", cuda_available=False)) == {"use_cpu": True}
    # The optimizer name resolves, in this transformers, to bitsandbytes' AdamW in 8 bits, paged
    # (bf16 is left out: TrainingArguments refuses it on a machine without a GPU).
    arguments = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, optim=cuda["optim"])
    optimizer, settings = Trainer.get_optimizer_cls_and_kwargs(arguments)
    assert optimizer.__module__.startswith("bitsandbytes.optim")
    assert (settings["optim_bits"], settings["is_paged"]) == (8, True)


def test_the_adapter_config_lists_target_modules_in_one_order(tmp_path) -> None:
    import json

    from s2l.train import sort_target_modules

    config = tmp_path / "adapter_config.json"
    written = {"r": 16, "target_modules": ["v_proj", "q_proj", "down_proj"], "peft_type": "LORA"}
    config.write_text(json.dumps(written, indent=2, sort_keys=True))
    sort_target_modules(config)
    assert json.loads(config.read_text()) == {**written, "target_modules": ["down_proj", "q_proj", "v_proj"]}
    shuffled = tmp_path / "other.json"
    shuffled.write_text(json.dumps({**written, "target_modules": ["q_proj", "down_proj", "v_proj"]}))
    sort_target_modules(shuffled)
    assert shuffled.read_bytes() == config.read_bytes()
