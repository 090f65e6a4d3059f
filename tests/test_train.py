"""Training logic: precision selection (the CUDA path, QLoRA, is chosen by logic that runs on any
machine), packed batches against padded ones on each family, checkpoints and the adapter config."""

import json
from pathlib import Path

import pytest
from families import TINY_BASES, save_tiny_base

from s2l.training.train import select_precision

ANSWERS = ["feat: add x", "fix(parser): handle an empty line at the end of a file without a newline",
           "docs: explain\n\nA longer body that spans\nseveral lines of text.", "chore: bump"]


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

    from s2l.training.train import nf4_settings

    assert nf4_settings(select_precision("auto", cuda_available=False)) is None
    assert nf4_settings(select_precision("none", cuda_available=True)) is None
    config = BitsAndBytesConfig(**nf4_settings(select_precision("auto", cuda_available=True)))
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert str(config.bnb_4bit_compute_dtype) == "torch.bfloat16"


def test_cuda_trains_with_a_paged_8bit_adamw_and_activation_checkpointing(tmp_path) -> None:
    from transformers import Trainer, TrainingArguments

    from s2l.training.train import device_arguments

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


def test_the_adapter_config_names_the_hub_base_and_lists_target_modules_in_one_order(tmp_path) -> None:
    import json

    from s2l.training.train import finish_adapter_config

    config = tmp_path / "adapter_config.json"
    written = {"r": 16, "target_modules": ["v_proj", "q_proj", "down_proj"], "peft_type": "LORA",
               "base_model_name_or_path": "/home/me/build/models/base"}
    config.write_text(json.dumps(written, indent=2, sort_keys=True))
    finish_adapter_config(config, "Qwen/Qwen3-8B")
    assert json.loads(config.read_text()) == {**written, "target_modules": ["down_proj", "q_proj", "v_proj"],
                                              "base_model_name_or_path": "Qwen/Qwen3-8B"}
    shuffled = tmp_path / "other.json"
    shuffled.write_text(json.dumps({**written, "target_modules": ["q_proj", "down_proj", "v_proj"]}))
    finish_adapter_config(shuffled, "Qwen/Qwen3-8B")
    assert shuffled.read_bytes() == config.read_bytes()


def write_dataset(path: Path) -> Path:
    """Four train records of different lengths and one held-out record, in the dataset's format."""
    records = [{"id": f"r{i}", "split": "train" if i < 4 else "eval",
                "messages": [{"role": "user", "content": f"Write a commit message for change {i}."},
                             {"role": "assistant", "content": (ANSWERS * 2)[i]}],
                "skill": {"key": "s", "name": "s", "sha256": "0" * 64},
                "source": {"generator": {"backend": "local"}, "teacher": {"backend": "local"}, "seed": 0}}
               for i in range(5)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.mark.parametrize("family", ["smollm2", *TINY_BASES])
def test_a_packed_batch_has_the_loss_of_its_examples_taken_one_at_a_time(base_model_dir: Path, tmp_path: Path,
                                                                          family: str) -> None:
    """Packing is only right if each example attends to itself alone: the loss of the packed row
    must be the token-weighted mean of the examples' losses, each computed alone, unpadded."""
    import torch
    from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

    from s2l.models.chat import supervised_ids
    from s2l.models.model import load_tokenizer
    from s2l.training.train import answer_only_loss, load_train_split

    model_dir = base_model_dir if family == "smollm2" else save_tiny_base(base_model_dir, family, tmp_path / family)
    tokenizer = load_tokenizer(model_dir)
    rows = load_train_split([write_dataset(tmp_path / "d.jsonl")], tokenizer, 1, tmp_path / "cache")
    assert rows.num_rows == 4 and rows.column_names == ["input_ids", "labels"]
    first = supervised_ids(tokenizer, [{"role": "user", "content": "Write a commit message for change 0."}],
                           ANSWERS[0])
    assert (rows[0]["input_ids"], rows[0]["labels"]) == first
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
            answered = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=ids, labels=labels, use_cache=False).loss.item() * answered
            count += answered
        loss, _ = answer_only_loss(model, DataCollatorWithFlattening()(list(rows)))
    assert loss.item() == pytest.approx(total / count, rel=1e-4)


def test_the_newest_complete_checkpoint_is_resumed(tmp_path: Path) -> None:
    from s2l.training.train import last_checkpoint

    assert last_checkpoint(tmp_path) is None
    for step, state in ((10, "{}"), (20, "{}"), (30, None), (40, '{"global_st')):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if state is not None:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    # 30 has no trainer state (killed before Trainer wrote it), 40 a torn one: 20 is the newest whole one.
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
