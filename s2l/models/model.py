"""Base model preparation and loading.

The configured source (a Python package that ships a GGUF file, a GGUF path, or a Hugging Face
model folder) becomes a plain safetensors folder under build/models/, which later stages load in
well under a second. Nothing is ever fetched from a hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2l.engine.source import resolve_source
from s2l.errors import UserError

MANIFEST = "s2l_model.json"


def prepare_base_model(source: str, model_id: str, out_dir: Path, sha256: str) -> dict[str, Any]:
    """Write the base model as a safetensors folder plus a provenance manifest.

    ``sha256``: the source's content hash, as the build plan computed it (``source_sha256``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_source(source)
    kwargs = {"gguf_file": resolved.gguf_file} if resolved.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(resolved.folder, **kwargs)
    if not tokenizer.chat_template:
        # Every stage speaks to the model in chat turns; a base (not instruct) model has no template.
        raise UserError(f"base_model.source {source}: its tokenizer has no chat template (chat_template in "
                        "tokenizer_config.json, or chat_template.jinja): use an instruct or chat model")
    loaded = AutoModelForCausalLM.from_pretrained(resolved.folder, **kwargs)
    if resolved.gguf_file:
        # A GGUF-loaded model refuses save_pretrained: rebuild a plain one from config + weights,
        # without the GGUF quantization marker (the weights are de-quantized; training refuses it).
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict())
    else:
        model = loaded
    # Every caller here sets greedy or sampled decoding per call; a server that reads the folder's
    # defaults (`transformers serve` samples only where do_sample is on) then honours temperature.
    model.generation_config.do_sample = True
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest = {
        "model_id": model_id,
        "source": source,
        "weights": str(resolved.weights),
        "source_sha256": sha256,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(model_dir: Path) -> dict[str, Any]:
    return json.loads((Path(model_dir) / MANIFEST).read_text(encoding="utf-8"))


def context_length(model_dir: Path) -> int:
    """How many tokens (prompt and answer together) the model attends over."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_dir).max_position_embeddings


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def inference_placement(cuda_available: bool) -> dict[str, Any]:
    """from_pretrained arguments for answering and scoring: bf16 on the first GPU where there is one
    (a large base fits where fp32 would not); on CPU the defaults, fp32."""
    return {"dtype": "bfloat16", "device_map": {"": 0}} if cuda_available else {}


def load_model(model_dir: Path, adapters: dict[str, Path] | None = None):
    """Load the prepared base model for inference, with LoRA adapters on top, each under its name
    (the first is active)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, **inference_placement(torch.cuda.is_available()))
    for number, (name, adapter_dir) in enumerate((adapters or {}).items()):
        if number == 0:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir, adapter_name=name)
        else:
            model.load_adapter(adapter_dir, adapter_name=name)
    return model.eval()


def merge_adapter(model_dir: Path, adapter_dir: Path, out: Path) -> None:
    """Write ``out``: the base model with the adapter's low-rank update added into its weights
    (``W + B·A·alpha/r``) and its tokenizer, a plain model folder for engines that load no LoRA.
    The base is loaded unquantized in its own dtype: merging into 4-bit weights would round the update away."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
