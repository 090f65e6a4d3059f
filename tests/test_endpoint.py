"""The openai backend against a real OpenAI-compatible server on loopback (``transformers serve`` on
the embedded model), and against small HTTP servers for the failures that server cannot produce."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from endpoint_server import TransformersServer, free_port

from s2l.data.synthetic import structured_request
from s2l.engine.config import check_api_keys, load_config
from s2l.errors import UserError
from s2l.models.backend import Sampling
from s2l.models.endpoint import Connection, EndpointError, OpenAIBackend
from s2l.models.request_cache import RequestCache

SAMPLING = Sampling(temperature=0.7, top_p=0.95, max_new_tokens=12)
QUESTIONS = [[{"role": "user", "content": f"Name a fruit that starts with the letter {letter}."}] for letter in "ABCD"]


@pytest.fixture(scope="module")
def server(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServer]:
    running = TransformersServer(base_model_dir, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield running
    running.kill()


def test_answers_are_cached_so_a_second_run_sends_nothing(server: TransformersServer, tmp_path: Path) -> None:
    connection = Connection(max_concurrency=4, max_retries=1)
    first = OpenAIBackend(server.base_url, server.model, connection, RequestCache(tmp_path))
    before = server.posts()
    answers = first.complete(QUESTIONS, SAMPLING, seed=0)
    assert server.posts() - before == 4
    assert all(answer.text and answer.completion_tokens > 0 for answer in answers)
    assert (first.usage.sent, first.usage.cache_hits, first.usage.retries) == (4, 0, 0)
    assert first.usage.prompt_tokens == sum(answer.prompt_tokens for answer in answers) > 0

    again = OpenAIBackend(server.base_url, server.model, connection, RequestCache(tmp_path))
    repeated = again.complete(QUESTIONS, SAMPLING, seed=0)
    assert server.posts() - before == 4  # nothing reached the server
    assert (again.usage.sent, again.usage.cache_hits) == (0, 4)
    assert [a.text for a in repeated] == [a.text for a in answers]
    # A changed sampling setting is a different request.
    again.complete(QUESTIONS[:1], Sampling(0.7, 0.95, 13), seed=0)
    assert server.posts() - before == 5


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers each POST with the next (status, headers, body) of ``server.script`` (the last one
    repeats) and records when each arrived and with which Authorization header."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.arrivals.append((time.monotonic(), self.headers.get("authorization")))
        status, headers, body = self.server.script[min(len(self.server.arrivals), len(self.server.script)) - 1]
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**headers, "content-type": "application/json",
                            "content-length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def scripted_server(script: list[tuple[int, dict[str, str], dict]]) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    httpd.script, httpd.arrivals = script, []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


COMPLETION = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "fig"}}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}


def test_a_429_waits_as_long_as_retry_after_says(tmp_path: Path) -> None:
    # transformers serve never rate-limits, so a scripted server plays the endpoint that does.
    httpd = scripted_server([(429, {"retry-after": "2"}, {"error": {"message": "rate limited"}}),
                             (200, {}, COMPLETION)])
    backend = OpenAIBackend(f"http://127.0.0.1:{httpd.server_port}/v1", "m", Connection(max_retries=3),
                            RequestCache(tmp_path))
    [answer] = backend.complete(QUESTIONS[:1], SAMPLING, seed=0)
    httpd.shutdown()
    (first, _), (second, _) = httpd.arrivals
    assert second - first >= 2.0
    assert answer.text == "fig" and answer.finish_reason == "stop"
    assert (backend.usage.sent, backend.usage.retries, backend.usage.completion_tokens) == (1, 1, 2)


def test_a_wrong_key_fails_at_once_naming_endpoint_model_and_status(tmp_path: Path, monkeypatch) -> None:
    # transformers serve takes any key, so a scripted server plays the endpoint that refuses one.
    monkeypatch.setenv("S2L_WRONG_KEY", "sk-wrong-0123456789")
    httpd = scripted_server([(401, {}, {"error": {"message": "Incorrect API key provided: sk-wrong-0123456789"}})])
    url = f"http://127.0.0.1:{httpd.server_port}/v1"
    cache = RequestCache(tmp_path)
    cache.put("earlier", {"text": "kept"})
    backend = OpenAIBackend(url, "gpt-x", Connection(api_key_env="S2L_WRONG_KEY", max_retries=5), cache,
                            where="synthesize.teacher")
    started = time.monotonic()
    with pytest.raises(EndpointError) as raised:
        backend.complete(QUESTIONS[:1], SAMPLING, seed=0)
    httpd.shutdown()
    message = str(raised.value)
    assert time.monotonic() - started < 5 and len(httpd.arrivals) == 1  # no retry of a 401
    assert httpd.arrivals[0][1] == "Bearer sk-wrong-0123456789"  # the key went in the header ...
    assert "sk-wrong-0123456789" not in message  # ... and nowhere else
    for part in ("synthesize.teacher", url, "gpt-x", "HTTP 401", "$S2L_WRONG_KEY"):
        assert part in message
    assert cache.get("earlier") == {"text": "kept"} and len(cache) == 1


def test_an_unreachable_endpoint_fails_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    backend = OpenAIBackend(url, "m", Connection(max_retries=1, timeout=5), RequestCache(tmp_path))
    started = time.monotonic()
    with pytest.raises(EndpointError, match="cannot reach it") as raised:
        backend.complete(QUESTIONS, SAMPLING, seed=0)
    assert url in str(raised.value) and time.monotonic() - started < 10


def test_a_key_variable_that_is_not_set_stops_the_build_before_it_starts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("S2L_UNSET_KEY", raising=False)
    override = tmp_path / "endpoint.yaml"
    override.write_text("synthesize:\n  teacher:\n    backend: openai\n    model: gpt-x\n"
                        "    base_url: https://api.example.com/v1\n    connection: {api_key_env: S2L_UNSET_KEY}\n")
    config = load_config([override])
    with pytest.raises(UserError, match=r"synthesize.teacher\.connection\.api_key_env: environment variable "
                                        r"S2L_UNSET_KEY is not set"):
        check_api_keys(config)
    monkeypatch.setenv("S2L_UNSET_KEY", "sk-1")
    check_api_keys(config)


def test_an_openai_role_needs_a_model_and_an_endpoint(tmp_path: Path) -> None:
    override = tmp_path / "endpoint.yaml"
    override.write_text("synthesize:\n  generator:\n    backend: openai\n    model: gpt-x\n")
    with pytest.raises(UserError, match="base_url"):
        load_config([override])


@pytest.mark.parametrize(("text", "request_text"), [
    ('{"request": "Document parse_config"}', "Document parse_config"),
    ('```json\n{"request": "Add a changelog entry"}\n```', "Add a changelog entry"),
    ('{"request": 3}', None),
    ('{"prompt": "x"}', None),
    ('["Document it"]', None),
    ("Document parse_config", None),
    ('{"request": "cut off', None),
])
def test_a_structured_request_is_the_json_asked_for_or_malformed(text: str, request_text: str | None) -> None:
    assert structured_request(text) == request_text


def test_structured_requests_count_what_is_not_the_json_asked_for(server: TransformersServer, tmp_path: Path) -> None:
    """transformers serve does not enforce response_format and the 135M model rarely writes the JSON:
    its malformed answers are counted and asked again, never fatal."""
    from s2l.data.synthetic import MAX_ROUNDS, Role, generate_requests
    from s2l.skills.skill import load_skill

    skill = load_skill(Path(__file__).parent.parent / "skills" / "conventional-commits")
    backend = OpenAIBackend(server.base_url, server.model, Connection(max_concurrency=8, max_retries=1),
                            RequestCache(tmp_path))
    role = Role("openai", server.model, 0.8, 0.95, 48, base_url=server.base_url, structured=True)
    generated = generate_requests(skill, backend, role, count=2, seed=0)
    requests, dropped = generated.requests, generated.dropped
    responses = _cached_responses(tmp_path)
    assert backend.usage.sent == len(responses) <= MAX_ROUNDS * 3
    # Every text the generator wrote became a request or is counted once, under its reason ...
    assert backend.usage.requests - sum(dropped.values()) >= len(requests)
    # ... and "malformed" counts exactly the finished answers that are not {"request": "..."}.
    assert dropped["malformed"] == sum(response["finish_reason"] == "stop" and not _is_request_json(response["text"])
                                       for response in responses)


def _cached_responses(folder: Path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(folder / "requests.sqlite") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT response FROM responses")]


def _is_request_json(text: str) -> bool:
    text = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        return isinstance(json.loads(text).get("request"), str)
    except (ValueError, AttributeError):
        return False


def test_a_judge_on_the_endpoint_grades_each_answer_once_and_malformed_verdicts_stay_ungraded(
        server: TransformersServer, tmp_path: Path) -> None:
    """The 135M model rarely writes the verdict JSON: whatever it writes, an expectation counts only
    when the server's reply parses into exactly one boolean per expectation."""
    from s2l.models.judge import VERDICT_SCHEMA, Judge, judge_conversation, parse_verdicts
    from s2l.models.request_cache import request_key

    cache = RequestCache(tmp_path)
    backend = OpenAIBackend(server.base_url, server.model, Connection(max_concurrency=4), cache)
    sampling = Sampling(0.7, 0.95, 64)
    judge = Judge(backend, sampling, "openai")
    items = [("Write a commit message for a login fix.", "fix(auth): handle empty email", ["Type is fix.", "Short."]),
             ("Write a commit message for docs.", "Here is your commit: updated docs.", ["Type is docs."])]
    before = server.posts()
    verdicts = judge.grade(items, seed=0)
    assert server.posts() - before == backend.usage.sent == 2
    for number, (item, graded) in enumerate(zip(items, verdicts)):
        body = backend.request_body(judge_conversation(*item), sampling, number, VERDICT_SCHEMA)
        assert body["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA  # a structured verdict asked for
        served = cache.get(request_key(server.base_url, body))["text"]
        assert graded == parse_verdicts(served, len(item[2]))
        assert all(v is None for v in graded) or all(isinstance(v, bool) for v in graded)
    assert judge.label == f"openai: {server.model}"


def test_a_judge_that_writes_the_verdicts_asked_for_grades_each_expectation(tmp_path: Path) -> None:
    """The 135M model behind transformers serve rarely writes the verdict JSON, so a scripted server
    plays a judge that does: its verdicts, and only those, become the grades, with the price applied."""
    from s2l.models.judge import Judge
    from s2l.reports.evaluate import EvalPrompt, grade_expectations

    verdicts = {"verdicts": [{"expectation": 1, "passed": True, "evidence": "type is fix"},
                             {"expectation": 2, "passed": False, "evidence": "ends with a period"}]}
    reply = {**COMPLETION, "choices": [{**COMPLETION["choices"][0],
                                        "message": {"role": "assistant", "content": json.dumps(verdicts)}}]}
    httpd = scripted_server([(200, {}, reply)])
    backend = OpenAIBackend(f"http://127.0.0.1:{httpd.server_port}/v1", "judge-m", Connection(), RequestCache(tmp_path))
    judge = Judge(backend, Sampling(0.0, 1.0, 64), "openai", {"prompt": 1.0, "completion": 2.0})
    prompts = [EvalPrompt("evals-1", "evals", "Write a commit message.", "fix: x", (), ("Type is fix.", "No period."))]
    conditions = {"adapter": {"answers": [{"id": "evals-1", "request": "Write a commit message.",
                                           "answers": ["fix: a.", "fix: b."]}]}}
    grade_expectations(conditions, prompts, judge, seed=0)
    httpd.shutdown()
    assert len(httpd.arrivals) == 2  # one request per sampled answer
    assert conditions["adapter"]["answers"][0]["expectations"] == [[True, False], [True, False]]
    assert conditions["adapter"]["expectations"] == {"total": 4, "graded": 4, "passed": 2, "ungraded": 0,
                                                     "pass_rate": 0.5}
    assert backend.usage.summary(judge.price)["estimated_cost"] == round((2 * 9 * 1.0 + 2 * 2 * 2.0) / 1e6, 6)
