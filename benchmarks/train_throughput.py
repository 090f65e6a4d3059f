"""Training throughput: s2l's trainer against a plain transformers Trainer, same model, data and steps.

s2l's trainer (s2l/training/train.py) packs each batch into one row without padding and computes logits only
where an answer token follows. The baseline is the stock recipe: ``Trainer`` with
``DataCollatorForSeq2Seq`` padding every batch to its longest sequence and the model's own loss
over every position. Both train the same LoRA on the same base model, records, batch size, seed
and number of steps, with the same per-step metrics callback; tokens count real (non-padding)
tokens only, so tokens/s is useful work per second.

Each training runs in its own process (peak RSS is per process), alternating baseline and s2l
``--repeats`` times in one run; the figures are medians. Results go to
``benchmarks/results/train_throughput.json``.

    python benchmarks/train_throughput.py --workdir /path/to/a/built/workdir --skill conventional-commits
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from s2l.engine.pipeline import DATASET, MODEL

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "train_throughput.json"
TARGET_RATIO = 1.5


def train_once(trainer: str, model_dir: Path, dataset_file: Path, steps: int, threads: int, out: Path) -> dict:
    """One training in this process; returns its per-step metrics summed."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from s2l.engine.config import load_config, section_settings
    from s2l.models.model import load_tokenizer
    from s2l.training.train import (
        LoraSettings,
        TrainingRun,
        TrainingSettings,
        load_train_split,
        lora_model,
        select_precision,
        train_adapter,
        trainer_classes,
    )

    torch.set_num_threads(threads)
    config = load_config([])
    lora = section_settings(LoraSettings, config["lora"])
    training = replace(section_settings(TrainingSettings, config["training"]), max_steps=steps)
    metrics = out / "metrics.jsonl"
    if trainer == "s2l":
        result = train_adapter(model_dir, [dataset_file], lora, training, config["seed"], out / "adapter",
                               TrainingRun(out / "checkpoints", metrics, threads), config["base_model"]["id"])
        losses = result.loss_history
    else:
        set_seed(config["seed"])
        tokenizer = load_tokenizer(model_dir)
        model = lora_model(model_dir, select_precision("none", False), lora)
        _, step_metrics = trainer_classes()
        arguments = TrainingArguments(
            output_dir=str(out / "checkpoints"), max_steps=steps, per_device_train_batch_size=training.batch_size,
            learning_rate=training.learning_rate, lr_scheduler_type="cosine", warmup_steps=training.warmup_steps,
            logging_steps=1, save_strategy="no", report_to="none", seed=config["seed"], data_seed=config["seed"],
            disable_tqdm=True, include_num_input_tokens_seen="non_padding", use_cpu=True)
        runner = Trainer(model=model, args=arguments,
                         train_dataset=load_train_split([dataset_file], tokenizer, threads, out / "data"),
                         data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
                         callbacks=[step_metrics(metrics, "cpu")])
        runner.train()
        losses = [entry["loss"] for entry in runner.state.log_history if "loss" in entry]
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    tokens, seconds = sum(r["tokens"] for r in rows), sum(r["seconds"] for r in rows)
    return {"trainer": trainer, "steps": len(rows), "tokens": tokens, "seconds": seconds,
            "tokens_per_second": tokens / seconds, "losses": losses}


def run_child(trainer: str, arguments: argparse.Namespace) -> dict:
    """``train_once`` in a fresh process, with that process's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="s2l-throughput-") as scratch:
        command = [sys.executable, __file__, "--child", trainer, "--workdir", str(arguments.workdir), "--skill",
                   arguments.skill, "--steps", str(arguments.steps), "--threads", str(arguments.threads),
                   "--out", scratch]
        child = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if child.returncode:
            raise SystemExit(f"{trainer} training failed (exit {child.returncode})")
    row = json.loads(child.stdout.strip().splitlines()[-1])
    row["peak_rss_mib"] = row.pop("peak_rss_kib") / 1024
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help=f"a work directory with {MODEL} and "
                        f"{DATASET.format(skill='<skill>')} (any finished build)")
    parser.add_argument("--skill", default="conventional-commits")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per training")
    parser.add_argument("--repeats", type=int, default=2, help="trainings per trainer, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the raw figures (default: %(default)s)")
    parser.add_argument("--child", choices=["plain", "s2l"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    dataset_file = arguments.workdir / DATASET.format(skill=arguments.skill)
    if arguments.child:
        import resource

        row = train_once(arguments.child, arguments.workdir / MODEL, dataset_file,
                         arguments.steps, arguments.threads, arguments.out)
        row["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(row), flush=True)
        return 0
    runs = []
    for repeat in range(arguments.repeats):
        for trainer in ("plain", "s2l"):
            row = run_child(trainer, arguments)
            print(f"{trainer:>5} #{repeat + 1}: {row['tokens']} tokens in {row['seconds']:.1f} s = "
                  f"{row['tokens_per_second']:.0f} tokens/s, peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
            runs.append(row)
    summary = {}
    for trainer in ("plain", "s2l"):
        rows = [r for r in runs if r["trainer"] == trainer]
        summary[trainer] = {"tokens_per_second": statistics.median(r["tokens_per_second"] for r in rows),
                            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rows),
                            "tokens_per_step": rows[0]["tokens"] / rows[0]["steps"],
                            "final_loss": rows[0]["losses"][-1]}
    ratio = summary["s2l"]["tokens_per_second"] / summary["plain"]["tokens_per_second"]
    memory = summary["s2l"]["peak_rss_mib"] / summary["plain"]["peak_rss_mib"]
    # runs[0] and runs[1] are the first plain and s2l trainings: the same batches, step for step.
    loss_difference = max(abs(a - b) for a, b in zip(runs[0]["losses"], runs[1]["losses"]))
    result = {"skill": arguments.skill, "steps": arguments.steps, "repeats": arguments.repeats,
              "threads": arguments.threads, "summary": summary, "speedup": ratio, "memory_ratio": memory,
              "max_loss_difference": loss_difference, "target_speedup": TARGET_RATIO, "runs": runs}
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"s2l vs plain Trainer: {ratio:.2f}x tokens/s (target {TARGET_RATIO}x), peak RSS x{memory:.2f}; "
          f"largest per-step loss difference {loss_difference:.2e}; written to {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
