"""What a job asks a scheduler for: memory sized from the base model's parameter count, and the
configured GPUs. Snakemake hands these to the executor (Slurm's --mem and --gpus, Kubernetes'
requests); locally they only bound what runs at once (--resources mem_mb=... gpu=...)."""

from __future__ import annotations

import json
from math import ceil, prod
from pathlib import Path
from typing import Any

from s2l.engine.hashing import remembered
from s2l.engine.source import resolve_source

# Python, torch and transformers themselves, before any weight is loaded.
PROCESS_MB = 2500
# Bytes per parameter a job holds in host memory: fp32 weights on CPU, times the activations,
# gradients and optimizer states of training; on a GPU only the bf16 weights pass through the host.
BYTES_PER_PARAMETER = {("cpu", "inference"): 8, ("cpu", "training"): 12, ("gpu", "inference"): 2,
                       ("gpu", "training"): 2}


def parameter_count(source: str, memo: Path) -> int:
    """Parameters of the configured base model, from the headers of its weight files only (a GGUF's
    tensor table, or each safetensors file's JSON header), without loading a weight; remembered in
    ``memo`` until a file's size or mtime changes, since the workflow asks at every parse and reading
    a GGUF's header parses its whole vocabulary too (2 s for the embedded model)."""
    return remembered(resolve_source(source).weights, memo, counted_parameters)


def counted_parameters(weights: Path) -> int:
    """Parameters in a GGUF file or in a folder's safetensors files, from their headers."""
    if weights.is_file():
        from gguf import GGUFReader

        return sum(int(tensor.n_elements) for tensor in GGUFReader(weights).tensors)
    total = 0
    for file in sorted(weights.glob("*.safetensors")):
        with open(file, "rb") as stream:
            header = json.loads(stream.read(int.from_bytes(stream.read(8), "little")))
        for name, tensor in header.items():
            if name != "__metadata__":
                total += prod(tensor["shape"])
    return total


def model_job_resources(parameters: int, gpu: dict[str, Any], training: bool) -> dict[str, Any]:
    """Resources of a job that loads the base model: ``mem_mb`` from ``parameters``, and with
    ``gpu.count`` > 0 the GPU request in the form both executor plugins read (``gpu``, plus
    ``gpu_model`` for Slurm's --gpus=<model>:<n> and ``gpu_manufacturer`` for Kubernetes)."""
    device = "gpu" if gpu["count"] else "cpu"
    per_parameter = BYTES_PER_PARAMETER[(device, "training" if training else "inference")]
    resources: dict[str, Any] = {"mem_mb": PROCESS_MB + ceil(parameters * per_parameter / 2**20)}
    if gpu["count"]:
        resources["gpu"] = gpu["count"]
        resources["gpu_manufacturer"] = gpu["manufacturer"]
        if gpu["model"]:
            resources["gpu_model"] = gpu["model"]
    return resources
