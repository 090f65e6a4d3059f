"""The ``openai`` backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, ``transformers
serve``, a gateway) through the official ``openai`` client.

Up to ``max_concurrency`` requests are in flight at once. Retries are the client's own: 408, 409,
429 and 5xx answers and dropped connections are retried up to ``max_retries`` times with exponential
backoff and jitter, honouring ``Retry-After``. Each completed response is committed to the request
cache as it arrives, so a job killed mid-way resends only what had not completed. The API key is
read from the environment variable the config names and goes nowhere but the request header.

An endpoint cannot be made to start its answer with given text, so ``answer_start`` is not used;
``stop`` is not sent either (the API would drop the stop text, and a closing line like a docstring's
quotes is part of the answer): the caller cuts the answer at its ending.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from s2l.engine.config import api_key_from_env
from s2l.errors import UserError
from s2l.models.backend import Completion, Sampling, Usage
from s2l.models.chat import Message
from s2l.models.constrain import CheckConstraint
from s2l.models.request_cache import RequestCache, request_key

# The client insists on a key; a server on loopback usually wants none.
NO_KEY = "unused"


class EndpointError(UserError):
    """An endpoint refused or failed a request for good (after the client's retries)."""


@dataclass(frozen=True)
class Connection:
    """How to reach an endpoint (``synthesize.<role>.connection``): none of it changes an answer, so
    none of it is in any content key."""

    api_key_env: str | None = None  # name of the environment variable holding the key
    timeout: float = 120.0  # seconds per attempt
    max_concurrency: int = 8
    max_retries: int = 6
    # Dollars (or any currency) per million prompt and completion tokens, for the estimated cost.
    price_per_million_tokens: dict[str, float] | None = field(default=None, hash=False)


def completion_from(response: dict[str, Any]) -> Completion:
    return Completion(response["text"], response["finish_reason"], response["prompt_tokens"],
                      response["completion_tokens"])


class OpenAIBackend:
    """Chat completions from one model behind an OpenAI-compatible endpoint, through the request cache."""

    def __init__(self, base_url: str, model: str, connection: Connection, cache: RequestCache,
                 where: str = "endpoint") -> None:
        from openai import DefaultHttpxClient, OpenAI

        self.model_id = model
        self.base_url = base_url
        self.connection = connection
        self.cache = cache
        self.where = where
        self.usage = Usage()
        self._key = api_key_from_env(connection.api_key_env, where) if connection.api_key_env else NO_KEY
        self._retry_lock = threading.Lock()
        self.client = OpenAI(
            base_url=base_url, api_key=self._key, timeout=connection.timeout, max_retries=connection.max_retries,
            http_client=DefaultHttpxClient(event_hooks={"request": [self._count_retry]}))

    def _count_retry(self, request) -> None:
        # The client numbers its attempts of one call in this header: 0 first, 1.. for retries.
        if int(request.headers.get("x-stainless-retry-count", "0")) > 0:
            with self._retry_lock:
                self.usage.retries += 1

    def request_body(self, messages: list[Message], sampling: Sampling, seed: int,
                     json_schema: dict | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_id, "messages": messages, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, "max_tokens": sampling.max_new_tokens, "seed": seed}
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": json_schema, "strict": True}}
        return body

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.chat.completions.create(**body)
        choice = response.choices[0]
        usage = response.usage
        return {"text": (choice.message.content or "").strip(),
                # Anything but a finished turn (a length cut, a content filter) is not an answer.
                "finish_reason": "stop" if choice.finish_reason == "stop" else "length",
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0}

    def failure(self, error: Exception) -> EndpointError:
        from openai import APIConnectionError, APIStatusError

        if isinstance(error, APIStatusError):
            what = f"HTTP {error.status_code}: {error.message}"
            if error.status_code in (401, 403):
                what += f" (check the key in ${self.connection.api_key_env})" if self.connection.api_key_env else (
                    f" (the endpoint wants a key: set {self.where}.connection.api_key_env)")
        elif isinstance(error, APIConnectionError):
            what = f"cannot reach it ({error.__cause__ or error})"
        else:
            what = f"{type(error).__name__}: {error}"
        if self._key != NO_KEY:
            what = what.replace(self._key, "***")
        return EndpointError(f"{self.where}: endpoint {self.base_url}, model {self.model_id}: {what}; "
                             f"gave up after {self.connection.max_retries} retries where retrying could help")

    def opening_scores(self, conversations: list[list[Message]], openings: tuple[str, ...],
                       calibrated: bool = False) -> None:
        """An endpoint is not made to start its answer with given text: no opening is scored."""
        return None

    def complete(
        self, conversations: list[list[Message]], sampling: Sampling, seed: int, desc: str = "",
        answer_start: str | list[str] = "", stop: str = "", json_schema: dict | None = None,
        constraint: CheckConstraint | None = None,
    ) -> list[Completion]:
        """Conversation ``i`` is sent with seed ``seed + i``: the same call is the same set of requests,
        which is what lets the cache answer a rerun. ``constraint`` is not used: an endpoint's answer is
        not held to the checks (OpenAI-compatible servers share no way to hold one to several regexes)."""
        started = time.monotonic()
        bodies = [self.request_body(messages, sampling, seed + index, json_schema)
                  for index, messages in enumerate(conversations)]
        keys = [request_key(self.base_url, body) for body in bodies]
        responses: list[dict[str, Any] | None] = [self.cache.get(key) for key in keys]
        missing = [index for index, response in enumerate(responses) if response is None]
        self.usage.requests += len(bodies)
        self.usage.cache_hits += len(bodies) - len(missing)
        sent = []
        if missing:
            with ThreadPoolExecutor(self.connection.max_concurrency) as pool, tqdm(
                    total=len(missing), desc=desc or "requests", unit="request") as progress:
                futures: dict[Future, int] = {pool.submit(self._send, bodies[i]): i for i in missing}
                pending = set(futures)
                error: Exception | None = None
                while pending and error is None:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        if future.exception() is not None:
                            error = error or future.exception()
                            continue
                        index = futures[future]
                        # Committed as it arrives: a job killed after this line never resends it.
                        responses[index] = future.result()
                        self.cache.put(keys[index], responses[index])
                        sent.append(responses[index])
                        progress.update()
                if error is not None:
                    for future in pending:
                        future.cancel()
                    # Requests already in flight may still complete: keep what they bring.
                    for future in wait(pending).done:
                        if not future.cancelled() and future.exception() is None:
                            self.cache.put(keys[futures[future]], future.result())
                    raise self.failure(error) from None
        self.usage.sent += len(sent)
        self.usage.add([completion_from(response) for response in sent], started)
        return [completion_from(response) for response in responses]  # type: ignore[arg-type]
