"""A build's adapters served by llama.cpp's OpenAI-compatible server (llama-cpp-python's
``llama_cpp.server``), the engine that generates the build's data: the base model is model ``base``,
each skill's adapter (as a GGUF LoRA, s2l/models/llamacpp.py) the model named by the skill's key, and
model ``auto`` the skill a request needs, picked by s2l/models/routing.py in front of the server.

``write_serving`` writes the folder the ``prepare_serving`` stage makes (build/serve): the adapters,
the server's own config file (``python -m llama_cpp.server --config_file`` runs it as it is) and the
skills' descriptions for the router. ``serving_app`` is what ``s2l serve`` runs. The server keeps
one model resident and loads another (the base GGUF and an adapter, well under a second for the
embedded model) when a request names it: any number of skills, one in memory at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2l.errors import UserError
from s2l.models.routing import DEFAULT_THRESHOLD, Router

SERVER_CONFIG = "llama_cpp.json"
SKILLS_FILE = "skills.json"
ADAPTERS_DIR = "adapters"
BASE_MODEL_NAME, AUTO_MODEL_NAME = "base", "auto"
# The requests whose body names a model; ``auto`` in any other is left for the server to refuse.
ROUTED_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
ROUTED_HEADER = b"x-s2l-skill"


class ServingError(UserError):
    """A serving folder the server cannot start on: what is missing or wrong, and which file."""


def model_entry(name: str, gguf: Path, context: int, lora: Path | None = None) -> dict[str, Any]:
    """One model of the server's config file: every field s2l relies on spelled out, so that no
    environment variable of the same name (pydantic settings read them) changes it."""
    return {"model": str(gguf), "model_alias": name, "lora_path": None if lora is None else str(lora),
            "n_ctx": context, "n_gpu_layers": 0, "verbose": False}


def write_serving(out: Path, gguf: Path, adapters: dict[str, Path], descriptions: dict[str, str],
                  base_config: dict[str, Any], context: int = 4096) -> Path:
    """build/serve: each adapter (skill key -> PEFT adapter folder) as a GGUF LoRA, the server's config
    file naming the base model and every adapter, and the descriptions the router matches."""
    from s2l.models.llamacpp import write_gguf_lora

    for name in adapters:
        if name in (BASE_MODEL_NAME, AUTO_MODEL_NAME):
            raise ServingError(f"skill {name!r}: its key is a model name the server keeps for itself; rename the skill")
    context = min(context, base_config.get("max_position_embeddings", context))
    (out / ADAPTERS_DIR).mkdir(parents=True, exist_ok=True)
    models = [model_entry(BASE_MODEL_NAME, gguf, context)]
    for key, adapter in sorted(adapters.items()):
        lora = write_gguf_lora(adapter, base_config, (out / ADAPTERS_DIR / f"{key}.gguf").resolve())
        models.append(model_entry(key, gguf, context, lora))
    (out / SERVER_CONFIG).write_text(json.dumps({"host": "127.0.0.1", "port": 8000, "models": models}, indent=2) + "\n",
                                     encoding="utf-8")
    (out / SKILLS_FILE).write_text(json.dumps(dict(sorted(descriptions.items())), indent=2) + "\n", encoding="utf-8")
    return out


def read_serving(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The models of a serving folder and the skills' descriptions, every file they name checked."""
    config_file, skills_file = folder / SERVER_CONFIG, folder / SKILLS_FILE
    for path in (config_file, skills_file):
        if not path.is_file():
            raise ServingError(f"{path}: missing; build it first: snakemake --cores 1 {folder}")
    models = json.loads(config_file.read_text(encoding="utf-8"))["models"]
    for entry in models:
        for field in ("model", "lora_path"):
            if entry.get(field) and not Path(entry[field]).is_file():
                raise ServingError(f"{config_file}: model {entry['model_alias']!r}: {field} {entry[field]} does not "
                                   f"exist; rebuild it: snakemake --cores 1 --forcerun prepare_serving {folder}")
    return models, json.loads(skills_file.read_text(encoding="utf-8"))


def request_text(payload: dict[str, Any]) -> str:
    """What a request asks, for the router: the last user message of a chat, or a completion's prompt."""
    if "messages" in payload:
        users = [message.get("content") or "" for message in payload["messages"] if message.get("role") == "user"]
        content = users[-1] if users else ""
        if isinstance(content, list):  # content parts: the text ones
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    prompt = payload.get("prompt", "")
    return " ".join(prompt) if isinstance(prompt, list) else str(prompt)


class AutoRouting:
    """ASGI middleware in front of the server: a request for model ``auto`` is rewritten to name the
    skill the router picks (``base`` where none matches); the response says which in its
    ``x-s2l-skill`` header. Every other request passes through untouched."""

    def __init__(self, app, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ROUTED_PATHS:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        routed = None
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None  # the server answers a malformed body itself
        if isinstance(payload, dict) and payload.get("model") == AUTO_MODEL_NAME:
            routed = self.router.route(request_text(payload)).skill or BASE_MODEL_NAME
            body = json.dumps({**payload, "model": routed}).encode()
            scope = {**scope, "headers": [(name, value) for name, value in scope["headers"]
                                          if name != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_routed(message) -> None:
            if routed is not None and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (ROUTED_HEADER, routed.encode())]}
            await send(message)

        await self.app(scope, replay, send_routed)


def serving_app(models: list[dict[str, Any]], descriptions: dict[str, str], threads: int,
                threshold: float = DEFAULT_THRESHOLD):
    """The server on a serving folder's models (read_serving), with ``auto`` routed by the skills'
    descriptions; the base model is loaded first."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    settings = [ModelSettings(**entry, n_threads=threads, n_threads_batch=threads) for entry in models]
    app = create_app(server_settings=ServerSettings(api_key=None, root_path=""), model_settings=settings)
    return AutoRouting(app, Router(descriptions, threshold))
