"""Serving adapters on llama.cpp's server (``s2l serve``, s2l/models/llamacpp_server.py), requests
through the ``openai`` client to the real server on loopback, and routing ``auto`` to the skill a
request needs (s2l/models/routing.py) on the shipped skills' own descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from endpoint_server import S2lServer
from test_model import REQUESTS

from s2l.models.backend import Sampling
from s2l.models.chat import conversation
from s2l.models.generation import LocalBackend
from s2l.models.llamacpp_server import SERVER_CONFIG, ServingError, read_serving
from s2l.models.routing import Router
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("conventional-commits", "google-docstrings", "keep-a-changelog")
COMMIT_REQUESTS = [*REQUESTS, "Renamed the helper parse_args to read_arguments. Commit message?"]
OFF_TOPIC = "What is the capital of France, and how many people live there?"


def descriptions(keys: tuple[str, ...] = SHIPPED) -> dict[str, str]:
    skills = [load_skill(ROOT / "skills" / key) for key in keys]
    return {skill.key: f"{skill.name}: {skill.description}" for skill in skills}


def test_the_router_picks_the_skill_a_request_asks_for_and_none_for_a_request_of_no_skill() -> None:
    router = Router(descriptions())
    assert router.route("Fixed the null check in the login handler. Commit message?").skill == "conventional-commits"
    assert router.route("Add a docstring to this function:\ndef area(width, height):\n    return width * height"
                        ).skill == "google-docstrings"
    assert router.route("Release 2.4.0, 2026-11-30: added dark mode; fixed the crash on start. Write the "
                        "CHANGELOG.md entry.").skill == "keep-a-changelog"
    route = router.route(OFF_TOPIC)
    assert route.skill is None and set(route.scores) == set(SHIPPED)
    assert max(route.scores.values()) < router.threshold


@pytest.fixture(scope="module")
def served(serving_folder: Path):
    server = S2lServer(serving_folder, serving_folder / "server.log").start()
    yield server
    server.kill()


def chat(client, model: str, request: str) -> tuple[str, str | None]:
    """A greedy answer of 8 tokens, and the skill ``auto`` was routed to (None: not routed). llama.cpp's
    repetition penalty is off, as in transformers' greedy decoding."""
    response = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": request}], temperature=0.0, max_tokens=8,
        extra_body={"repeat_penalty": 1.0})
    return response.parse().choices[0].message.content, response.headers.get("x-s2l-skill")


@pytest.mark.workflow
def test_a_served_adapter_answers_as_peft_does_and_auto_routes_to_it(served, random_adapter, tokenizer) -> None:
    """As in tests/test_llamacpp.py: the engine's 4-bit weights and PEFT's float32 part after a few
    tokens at most; measured here, three of four answers agree in their first three tokens."""
    from openai import OpenAI

    client = OpenAI(base_url=served.base_url, api_key="unused", max_retries=0)
    assert {model.id for model in client.models.list().data} == {"base", "conventional-commits"}
    ours = [chat(client, "conventional-commits", request)[0] for request in COMMIT_REQUESTS]
    base = [chat(client, "base", request)[0] for request in COMMIT_REQUESTS]
    peft = LocalBackend(random_adapter[0], tokenizer, "smollm2", 4).complete(
        [conversation(request) for request in COMMIT_REQUESTS], Sampling(max_new_tokens=8), seed=0)
    assert ours != base
    first_tokens = [(tokenizer(a)["input_ids"][:3], tokenizer(b.text)["input_ids"][:3]) for a, b in zip(ours, peft)]
    assert sum(a == b for a, b in first_tokens) >= 3, (ours, [c.text for c in peft])
    # auto: each commit request reaches the adapter and gets its answer; a request of no skill the base's.
    for request, answer in zip(COMMIT_REQUESTS, ours):
        assert chat(client, "auto", request) == (answer, "conventional-commits")
    assert chat(client, "auto", OFF_TOPIC) == (chat(client, "base", OFF_TOPIC)[0], "base")
    assert chat(client, "base", OFF_TOPIC)[1] is None


def test_a_serving_folder_with_a_missing_adapter_is_refused_naming_it(serving_folder: Path, tmp_path: Path) -> None:
    config = json.loads((serving_folder / SERVER_CONFIG).read_text())
    config["models"][1]["lora_path"] = str(tmp_path / "gone.gguf")
    broken = tmp_path / "serve"
    broken.mkdir()
    (broken / SERVER_CONFIG).write_text(json.dumps(config))
    (broken / "skills.json").write_text((serving_folder / "skills.json").read_text())
    with pytest.raises(ServingError, match=r"model 'conventional-commits': lora_path .*gone\.gguf does not exist"):
        read_serving(broken)
