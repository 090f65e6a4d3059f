"""The adapter's model card: README.md in its folder, saying what it is, where it came from, how it
was trained and how to load it (transformers + peft, vLLM, llama.cpp)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from s2l.models.serving import vllm_max_lora_rank
from s2l.training.train import LoraSettings, TrainingResult, TrainingSettings


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
        f"`adapter_config.json` names `{base['model_id']}` as the base; the adapter was trained on the",
        f"prepared copy at `{base['path']}` (sha256 above).",
        "",
        "With transformers and peft, on the prepared copy (offline; the hub id works too, online):",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{base["path"]}")  # or "{base["model_id"]}"',
        f'model = PeftModel.from_pretrained(base, "{out_dir}")',
        "```",
        "",
        f"With vLLM (OpenAI-compatible server; ask for model `{skill['key']}`):",
        "",
        "```sh",
        f"vllm serve {base['model_id']} --enable-lora --max-lora-rank {vllm_max_lora_rank(lora.r)} \\",
        f"    --lora-modules {skill['key']}={out_dir}",
        "```",
        "",
        "With llama.cpp: convert the adapter to a GGUF LoRA with llama.cpp's converter, then load it",
        "beside a GGUF of the same base:",
        "",
        "```sh",
        f"python llama.cpp/convert_lora_to_gguf.py {out_dir} --base {base['path']} --outtype f16 \\",
        f"    --outfile {skill['key']}-lora.gguf",
        f"llama-server -m base.gguf --lora {skill['key']}-lora.gguf",
        "```",
        "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")
