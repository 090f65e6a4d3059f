"""Training: a rank-16 LoRA adapter on the frozen base model, loss on the answer tokens only.

4-bit nf4 QLoRA (bitsandbytes) when CUDA is available, plain fp32 LoRA on CPU. The skill text is
never in the training prompt: the adapter has to carry the skill's behaviour itself.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l.models.chat import supervised_ids


@dataclass(frozen=True)
class LoraSettings:
    """The ``lora`` section of the config (defaults: config.yaml)."""

    r: int
    alpha: int
    dropout: float
    target_modules: str | list[str]


@dataclass(frozen=True)
class TrainingSettings:
    """The ``training`` section of the config (defaults: config.yaml)."""

    epochs: float
    batch_size: int
    gradient_accumulation_steps: int
    learning_rate: float
    warmup_steps: int
    quantization: str  # auto: nf4 on CUDA, none on CPU
    max_steps: int  # >0 caps the run (quick tests)
    checkpoint_steps: int  # a killed run resumes from its last checkpoint


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


def lora_model(model_dir: Path, precision: Precision, lora: LoraSettings):
    """The frozen base, held as ``precision`` says, with fresh trainable LoRA layers."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(load_base_for_training(model_dir, precision), LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
        task_type="CAUSAL_LM"))


@dataclass
class TrainingResult:
    precision: str
    trainable_parameters: int
    total_parameters: int
    train_records: int
    steps: int
    final_loss: float
    loss_history: list[float] = field(default_factory=list)


# Tokenising a few hundred records in one process is faster than starting workers for it.
PARALLEL_MAP_ROWS = 2000


def load_train_split(dataset_files: list[Path], tokenizer, threads: int, scratch: Path):
    """The train records of ``dataset_files`` as a ``datasets.Dataset`` of ``input_ids`` and ``labels``
    (the prompt masked out), read with the record's declared features and tokenised by ``map``."""
    from datasets import load_dataset

    from s2l.data.dataset import record_features

    records = load_dataset("json", data_files=[str(path) for path in dataset_files], features=record_features(),
                           split="train", cache_dir=str(scratch))
    records = records.filter(lambda split: split == "train", input_columns="split")

    def tokenize(messages: list[dict[str, str]]) -> dict[str, list[int]]:
        user, assistant = messages
        input_ids, labels = supervised_ids(tokenizer, [user], assistant["content"])
        return {"input_ids": input_ids, "labels": labels}

    return records.map(tokenize, input_columns="messages", remove_columns=records.column_names,
                       num_proc=threads if records.num_rows >= PARALLEL_MAP_ROWS else None,
                       desc="tokenizing")


def answer_only_loss(model, inputs: dict[str, Any], num_items_in_batch=None):
    """Next-token cross-entropy on the answer tokens, computing logits only where a label follows.

    The vocabulary projection is the largest single matmul of a small model (49k x 576 per token
    for SmolLM2) and the prompt's logits carry no loss, so ``logits_to_keep`` (a boolean mask over
    positions) skips them; summed, then divided by the answer tokens of the whole accumulated batch,
    as transformers' own causal-LM loss does."""
    import torch
    import torch.nn.functional as F

    labels = inputs.pop("labels")
    targets = labels[:, 1:]
    scored = torch.zeros_like(labels, dtype=torch.bool)
    scored[:, :-1] = targets != -100
    # No KV cache: with one, transformers would not read the packed position ids as example boundaries.
    outputs = model(**inputs, logits_to_keep=scored, use_cache=False)
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])
    loss = F.cross_entropy(logits.float(), targets[targets != -100], reduction="sum")
    return loss / (num_items_in_batch if num_items_in_batch is not None else scored.sum()), outputs


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete Trainer checkpoint in ``folder``: Trainer writes ``trainer_state.json``
    last, so a checkpoint a kill cut short has none and is passed over."""
    complete = []
    for checkpoint in folder.glob("checkpoint-*"):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        complete.append((int(checkpoint.name.rsplit("-", 1)[1]), checkpoint))
    return max(complete)[1] if complete else None


def peak_memory_mib(device: str) -> float:
    """Peak memory so far: CUDA memory allocated by torch on a GPU, the process's peak RSS on CPU."""
    import resource

    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def trainer_classes():
    """The Trainer subclass and callback, defined on first use so importing s2l.training.train stays cheap."""
    import time

    from tqdm.auto import tqdm
    from transformers import Trainer, TrainerCallback

    class AnswerOnlyTrainer(Trainer):
        """Trainer with ``answer_only_loss``; the loss is already divided by the accumulated batch's
        answer tokens, so Trainer must neither divide it by the accumulation steps again nor skip
        counting those tokens."""

        loss_is_scaled_for_ga = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # Trainer then counts num_items_in_batch

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = answer_only_loss(model, inputs, num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

    class StepMetrics(TrainerCallback):
        """One JSON line per optimizer step (loss, tokens, tokens/s, peak memory) appended to
        ``metrics_file``, and a progress bar showing loss and tokens/s. After a resume the lines of
        steps past the checkpoint are dropped first: they are trained again."""

        def __init__(self, metrics_file: Path, device: str):
            self.metrics_file, self.device = metrics_file, device
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            kept = []
            if self.metrics_file.is_file():
                kept = [line for line in self.metrics_file.read_text(encoding="utf-8").splitlines()
                        if line.strip() and json.loads(line)["step"] <= state.global_step]
            self.metrics_file.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            self.tokens_seen, self.clock = state.num_input_tokens_seen, time.perf_counter()
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            now = time.perf_counter()
            tokens = state.num_input_tokens_seen - self.tokens_seen
            seconds = now - self.clock
            self.tokens_seen, self.clock = state.num_input_tokens_seen, now
            line = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "loss": logs["loss"],
                    "learning_rate": logs.get("learning_rate"), "tokens": tokens,
                    "seconds": round(seconds, 4), "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
                    "peak_memory_mib": round(peak_memory_mib(self.device), 1)}
            with open(self.metrics_file, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(line) + "\n")
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tokens_per_s=line["tokens_per_second"])
            self.bar.update(state.global_step - self.bar.n)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return AnswerOnlyTrainer, StepMetrics


@dataclass(frozen=True)
class TrainingRun:
    """Where one training job keeps its checkpoints and metrics, and the threads it may use."""

    checkpoint_dir: Path
    metrics_file: Path
    threads: int = 1


def train_adapter(
    model_dir: Path,
    dataset_files: list[Path],
    lora: LoraSettings,
    training: TrainingSettings,
    seed: int,
    out_dir: Path,
    where: TrainingRun,
    base_model_id: str,
) -> TrainingResult:
    """Train on the train split of ``dataset_files`` and save a standard PEFT adapter folder to ``out_dir``.

    Batches are packed: a batch's examples are concatenated into one row with no padding, and the
    position ids restarting at each example make transformers mask attention to stay within each
    example, so the loss is that of the padded batch at the cost of its real tokens only.
    Checkpoints go to ``where.checkpoint_dir`` every ``training.checkpoint_steps`` steps; a run
    that finds one there (a killed job rerun) continues from it, and a finished run removes them."""
    import shutil

    from transformers import DataCollatorWithFlattening, PrinterCallback, TrainingArguments, set_seed

    from s2l.models.model import load_tokenizer

    set_seed(seed)
    precision = training_precision(training)
    tokenizer = load_tokenizer(model_dir)
    model = lora_model(model_dir, precision, lora)
    trainable, total = model.get_nb_trainable_parameters()
    where.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    resume = last_checkpoint(where.checkpoint_dir)
    if resume is not None:
        print(f"resuming from {resume} (a run of this training that did not finish)", file=sys.stderr)
    trainer_class, metrics_class = trainer_classes()
    with tempfile.TemporaryDirectory(prefix="s2l-train-") as scratch:
        train_split = load_train_split(dataset_files, tokenizer, where.threads, Path(scratch))
        arguments = TrainingArguments(
            output_dir=str(where.checkpoint_dir),
            num_train_epochs=training.epochs,
            max_steps=training.max_steps,
            per_device_train_batch_size=training.batch_size,
            gradient_accumulation_steps=training.gradient_accumulation_steps,
            learning_rate=training.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=training.warmup_steps,
            logging_steps=1,
            save_strategy="steps",
            save_steps=training.checkpoint_steps,
            save_total_limit=2,  # the newest may be cut short by a kill; the one before it is whole
            report_to="none",
            seed=seed,
            data_seed=seed,
            disable_tqdm=True,  # StepMetrics draws the bar, with loss and tokens/s
            include_num_input_tokens_seen="all",  # packed: every token is real
            dataloader_num_workers=0,
            **device_arguments(precision),
        )
        trainer = trainer_class(
            model=model,
            args=arguments,
            train_dataset=train_split,
            data_collator=DataCollatorWithFlattening(),
            # Kept beside the checkpoints while training: Snakemake deletes a failed job's outputs,
            # and a resumed run's metrics must still start at step 1.
            callbacks=[metrics_class(where.checkpoint_dir / "metrics.jsonl", precision.device)],
        )
        # With its own bar off, Trainer prints each step's log as a raw dict; the bar shows the loss.
        trainer.remove_callback(PrinterCallback)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    model.save_pretrained(out_dir)
    finish_adapter_config(out_dir / "adapter_config.json", base_model_id)
    shutil.copyfile(where.checkpoint_dir / "metrics.jsonl", where.metrics_file)
    shutil.rmtree(where.checkpoint_dir, ignore_errors=True)
    return TrainingResult(
        precision=precision.label,
        trainable_parameters=trainable,
        total_parameters=total,
        train_records=train_split.num_rows,
        steps=trainer.state.global_step,
        final_loss=losses[-1] if losses else float("nan"),
        loss_history=losses,
    )


def finish_adapter_config(config_file: Path, base_model_id: str) -> None:
    """Two fixes to the ``adapter_config.json`` PEFT writes. ``base_model_name_or_path`` becomes the
    configured ``base_model.id`` (a hub id), not this machine's build folder, so the adapter loads
    elsewhere. ``target_modules`` PEFT writes from a set, in an order that changes with each
    process's string hashing: sorted, the same training gives the same bytes, so what is built on
    it restores."""
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_model_id
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True))
