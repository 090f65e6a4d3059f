"""Training: a rank-16 LoRA adapter on the frozen base model, loss on the answer tokens only.

4-bit nf4 QLoRA (bitsandbytes) when CUDA is available, plain fp32 LoRA on CPU. The skill text is
never in the training prompt: the adapter has to carry the skill's behaviour itself.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from s2l.chat import supervised_ids


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass(frozen=True)
class TrainingSettings:
    epochs: float = 2
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    warmup_steps: int = 2
    quantization: str = "auto"  # auto: nf4 on CUDA, none on CPU
    max_steps: int = -1  # >0 caps the run (quick tests)


@dataclass(frozen=True)
class Precision:
    """How the frozen base is held during training."""

    device: str
    quantize_4bit: bool
    compute_dtype: str

    @property
    def label(self) -> str:
        return "4-bit nf4 QLoRA" if self.quantize_4bit else f"{self.compute_dtype} LoRA on {self.device}"


def select_precision(quantization: str, cuda_available: bool) -> Precision:
    """auto: QLoRA (nf4, bf16 compute) on CUDA, fp32 LoRA on CPU; nf4 without CUDA is an error."""
    if quantization not in ("auto", "nf4", "none"):
        raise ValueError(f"training.quantization: {quantization!r} is not one of auto, nf4, none")
    if quantization == "nf4" and not cuda_available:
        raise ValueError("training.quantization: nf4 needs a CUDA GPU (bitsandbytes); use auto or none")
    if cuda_available and quantization in ("auto", "nf4"):
        return Precision("cuda", True, "bfloat16")
    return Precision("cuda" if cuda_available else "cpu", False, "float32")


def training_precision(training: TrainingSettings) -> Precision:
    """The precision training will use on this machine."""
    import torch

    return select_precision(training.quantization, torch.cuda.is_available())


def nf4_settings(precision: Precision) -> dict[str, Any] | None:
    """BitsAndBytesConfig arguments for a 4-bit base: nf4 weights, their quantisation constants
    quantised again (double quantisation, about 0.4 bits a parameter saved), bf16 compute."""
    if not precision.quantize_4bit:
        return None
    return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": precision.compute_dtype}


def device_arguments(precision: Precision) -> dict[str, Any]:
    """The TrainingArguments that depend on the device. On CUDA: a paged 8-bit AdamW (optimizer
    states in bitsandbytes' paged memory, so a long batch spills instead of running out) and
    activation (gradient) checkpointing, recomputed in the backward pass instead of held: the QLoRA
    recipe; bf16 when that is the compute dtype. On CPU: Trainer's defaults, fp32."""
    if precision.device != "cuda":
        return {"use_cpu": True}
    return {"optim": "paged_adamw_8bit", "activation_checkpointing": True,
            "bf16": precision.compute_dtype == "bfloat16"}


def tokenize_records(records: list[dict[str, Any]], tokenizer) -> list[dict[str, list[int]]]:
    examples = []
    for record in records:
        user, assistant = record["messages"]
        input_ids, labels = supervised_ids(tokenizer, [user], assistant["content"])
        examples.append({"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels})
    return examples


def load_base_for_training(model_dir: Path, precision: Precision):
    import torch
    from transformers import AutoModelForCausalLM

    settings = nf4_settings(precision)
    if settings is None:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, precision.compute_dtype))
        if precision.device == "cuda":
            model.enable_input_require_grads()  # gradients reach checkpointed layers past frozen embeddings
        return model.to(precision.device)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(**settings)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quantization, device_map={"": 0})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)


@dataclass
class TrainingResult:
    precision: str
    trainable_parameters: int
    total_parameters: int
    train_records: int
    steps: int
    final_loss: float
    loss_history: list[float] = field(default_factory=list)


def train_adapter(
    model_dir: Path,
    records: list[dict[str, Any]],
    lora: LoraSettings,
    training: TrainingSettings,
    seed: int,
    out_dir: Path,
) -> TrainingResult:
    """Train on the train split and save a standard PEFT adapter folder to ``out_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from s2l.model import load_tokenizer

    set_seed(seed)
    precision = training_precision(training)
    tokenizer = load_tokenizer(model_dir)
    train_records = [r for r in records if r["split"] == "train"]
    model = get_peft_model(
        load_base_for_training(model_dir, precision),
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    trainable, total = model.get_nb_trainable_parameters()
    with tempfile.TemporaryDirectory(prefix="s2l-train-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=training.epochs,
            max_steps=training.max_steps,
            per_device_train_batch_size=training.batch_size,
            gradient_accumulation_steps=training.gradient_accumulation_steps,
            learning_rate=training.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=training.warmup_steps,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=seed,
            data_seed=seed,
            disable_tqdm=False,
            **device_arguments(precision),
        )
        trainer = Trainer(
            model=model,
            args=arguments,
            train_dataset=tokenize_records(train_records, tokenizer),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        )
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    model.save_pretrained(out_dir)
    sort_target_modules(out_dir / "adapter_config.json")
    return TrainingResult(
        precision=precision.label,
        trainable_parameters=trainable,
        total_parameters=total,
        train_records=len(train_records),
        steps=trainer.state.global_step,
        final_loss=losses[-1] if losses else float("nan"),
        loss_history=losses,
    )


def sort_target_modules(config_file: Path) -> None:
    """PEFT writes ``target_modules`` from a set, in an order that changes with each process's string
    hashing: sorted, the same training gives the same bytes, so what is built on it restores."""
    config = json.loads(config_file.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True))


def write_model_card(out_dir: Path, provenance: dict[str, Any], lora: LoraSettings, training: TrainingSettings,
                     result: TrainingResult) -> None:
    """README.md for the adapter folder: what it is, where it came from, how it was trained."""
    skill, base = provenance["skill"], provenance["base_model"]
    summary = asdict(result)
    summary.pop("loss_history")
    lines = [
        "---",
        "library_name: peft",
        f"base_model: {base['model_id']}",
        "tags: [lora, skill-to-lora, s2l]",
        "---",
        "",
        f"# LoRA adapter for the `{skill['name']}` skill",
        "",
        "Built by s2l (Skill-to-LoRA): the base model was fine-tuned on a teacher's answers to",
        "synthetic requests, with the skill text removed from the prompt, so that the adapter stands",
        "in for the SKILL.md in context.",
        "",
        "| | |",
        "|---|---|",
        f"| skill | `{skill['key']}` (name `{skill['name']}`) |",
        f"| skill sha256 | `{skill['sha256']}` |",
        f"| base model | {base['model_id']} |",
        f"| base model sha256 | `{base['source_sha256']}` |",
        f"| precision | {result.precision} |",
        f"| trainable parameters | {result.trainable_parameters:,} of {result.total_parameters:,} |",
        f"| training records | {result.train_records} |",
        f"| optimizer steps | {result.steps} |",
        f"| final training loss | {result.final_loss:.4f} |",
        f"| seed | {provenance['seed']} |",
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps({"lora": asdict(lora), "training": asdict(training)}, indent=2),
        "```",
        "",
        "## Provenance",
        "",
        "```json",
        json.dumps({**provenance, "result": summary}, indent=2),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{base["path"]}")',
        f'model = PeftModel.from_pretrained(base, "{out_dir}")',
        "```",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")
