"""What a serving engine's LoRA loader accepts: a structural check of an adapter folder against
vLLM's rules (its ``PEFTHelper`` and ``LoRAModel.from_local_checkpoint``), without vLLM or a GPU.

vLLM refuses an adapter whose rank exceeds ``--max-lora-rank`` (itself one of a fixed set), that
uses DoRA, ``modules_to_save`` or a bias, or whose weights name a module the model's LoRA layers do
not cover; it does not load embedding or ``lm_head`` deltas for these families. Checking the folder
here catches all of that at build time instead of at a server's start."""

from __future__ import annotations

import json
import re
from pathlib import Path

from safetensors import safe_open

# vLLM's LoRAConfig accepts only these values for --max-lora-rank; an adapter loads if r is at most it.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# The decoder layers' linear projections of the Llama, Qwen2/Qwen3, Gemma 2/3 and Mistral families:
# vLLM packs q/k/v and gate/up into one layer each and still loads them by these names.
DECODER_PROJECTIONS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
REQUIRED_FIELDS = ("r", "lora_alpha", "target_modules")
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
LORA_WEIGHT = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?P<part>lora_A|lora_B)\.weight$")


def vllm_max_lora_rank(rank: int) -> int | None:
    """The smallest ``--max-lora-rank`` that serves an adapter of this rank; None when none does."""
    return next((allowed for allowed in VLLM_MAX_LORA_RANKS if allowed >= rank), None)


def config_problems(config: dict) -> list[str]:
    problems = [f"{CONFIG_FILE}: {field}: missing" for field in REQUIRED_FIELDS if field not in config]
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"{CONFIG_FILE}: peft_type: {config['peft_type']!r}, not 'LORA'")
    rank = config.get("r")
    if rank is not None and (not isinstance(rank, int) or rank < 1 or vllm_max_lora_rank(rank) is None):
        problems.append(f"{CONFIG_FILE}: r: {rank!r}, not a rank from 1 to {VLLM_MAX_LORA_RANKS[-1]}")
    if config.get("use_dora"):
        problems.append(f"{CONFIG_FILE}: use_dora: DoRA is not supported")
    if config.get("modules_to_save"):
        problems.append(f"{CONFIG_FILE}: modules_to_save: {config['modules_to_save']!r}, must be empty")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append(f"{CONFIG_FILE}: bias: adapter biases are not loaded")
    targets = config.get("target_modules")
    if isinstance(targets, list):  # a string is a pattern: the weights' names are checked instead
        unsupported = sorted(name for name in targets if name.rsplit(".", 1)[-1] not in DECODER_PROJECTIONS)
        if unsupported:
            problems.append(f"{CONFIG_FILE}: target_modules: {', '.join(unsupported)} not a decoder layer's "
                            f"linear projection ({', '.join(sorted(DECODER_PROJECTIONS))})")
    return problems


def weight_problems(path: Path, rank: int | None) -> list[str]:
    problems = []
    with safe_open(path, framework="pt") as weights:
        names = list(weights.keys())
        if not names:
            return [f"{WEIGHTS_FILE}: no tensors"]
        for name in names:
            match = LORA_WEIGHT.match(name)
            if not match:
                problems.append(f"{WEIGHTS_FILE}: {name}: not a LoRA A/B weight (embedding, lm_head or bias "
                                "deltas are not loaded)")
                continue
            module = match.group("module").rsplit(".", 1)[-1]
            if module not in DECODER_PROJECTIONS:
                problems.append(f"{WEIGHTS_FILE}: {name}: {module} is not a decoder layer's linear projection")
            shape = weights.get_slice(name).get_shape()
            axis = 0 if match.group("part") == "lora_A" else 1
            if rank is not None and (len(shape) != 2 or shape[axis] != rank):
                problems.append(f"{WEIGHTS_FILE}: {name}: shape {list(shape)} does not hold rank {rank}")
    return problems


def vllm_lora_problems(adapter: Path) -> list[str]:
    """Every reason vLLM would refuse the adapter folder ``adapter``, each naming the file in it and
    the field (or tensor); an empty list when it would load it."""
    config_path, weights_path = adapter / CONFIG_FILE, adapter / WEIGHTS_FILE
    if not config_path.is_file():
        return [f"{CONFIG_FILE}: missing"]
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        return [f"{CONFIG_FILE}: unparseable JSON ({error})"]
    problems = config_problems(config)
    if not weights_path.is_file():
        return [*problems, f"{WEIGHTS_FILE}: missing"]
    rank = config.get("r") if isinstance(config.get("r"), int) else None
    return [*problems, *weight_problems(weights_path, rank)]
