"""A bounded load test of ``s2l serve`` (llama.cpp's server) on loopback (a benchmark, not a test).

Starts ``s2l serve`` on a build's serving folder (``snakemake build/serve``) and sends the same
requests (the served skills' evals.json prompts, in turn) through the ``openai`` client, a few at a
time, in four settings, one after the other in one run: every request to one adapter, requests
spread over all adapters in turn, every request to the base model (no adapter), and every request
to ``auto`` (routed by the request). Prints and writes requests/s, completion tokens/s and p50/p95
latency per setting to ``benchmarks/results/serve_load.json``. The server keeps one model resident:
a request for another adapter than the last loads it, which the spread setting pays for.

    python benchmarks/serve_load.py --serve /tmp/s2l-bench-xyz/build/serve
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from endpoint_server import S2lServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "serve_load.json"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_setting(client, name: str, requests: list[tuple[str, str]], concurrency: int, max_tokens: int) -> dict:
    """``requests``: (model, prompt) pairs, sent ``concurrency`` at a time."""
    def send(request: tuple[str, str]) -> tuple[float, int]:
        started = time.perf_counter()
        response = client.chat.completions.create(model=request[0], messages=[{"role": "user", "content": request[1]}],
                                                  temperature=0.7, max_tokens=max_tokens, seed=0)
        return time.perf_counter() - started, response.usage.completion_tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(send, requests))
    wall = time.perf_counter() - started
    latencies = [seconds for seconds, _ in done]
    row = {"setting": name, "requests": len(requests), "concurrency": concurrency, "wall_seconds": round(wall, 2),
           "requests_per_second": round(len(requests) / wall, 3),
           "completion_tokens_per_second": round(sum(tokens for _, tokens in done) / wall, 1),
           "p50_seconds": round(statistics.median(latencies), 3), "p95_seconds": round(percentile(latencies, 0.95), 3)}
    print(f"{name:<22} {row['requests_per_second']:6.2f} req/s {row['completion_tokens_per_second']:7.1f} tok/s  "
          f"p50 {row['p50_seconds']:6.2f} s  p95 {row['p95_seconds']:6.2f} s", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=Path, required=True, help="a serving folder (snakemake build/serve)")
    parser.add_argument("--requests", type=int, default=24, help="requests per setting (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    from openai import OpenAI

    skills = list(json.loads((args.serve / "skills.json").read_text()))
    prompts = [(key, case["prompt"]) for key in skills for case in
               json.loads((ROOT / "skills" / key / "evals" / "evals.json").read_text())["evals"]
               if (ROOT / "skills" / key).is_dir()]
    ordered = [prompts[(n * 5) % len(prompts)] for n in range(args.requests)]  # skills mixed, each in turn
    settings = {
        f"one adapter ({skills[0]})": [(skills[0], prompt) for _, prompt in ordered],
        "all adapters in turn": [(skills[n % len(skills)], prompt) for n, (_, prompt) in enumerate(ordered)],
        "no adapter (base)": [("base", prompt) for _, prompt in ordered],
        "auto (routed)": [("auto", prompt) for _, prompt in ordered],
    }
    with tempfile.TemporaryDirectory() as scratch:
        server = S2lServer(args.serve, Path(scratch) / "server.log", threads=args.threads).start()
        try:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=600)
            rows = [run_setting(client, name, requests, args.concurrency, args.max_tokens)
                    for name, requests in settings.items()]
        finally:
            server.kill()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"serve": str(args.serve), "skills": skills, "max_tokens": args.max_tokens,
                                     "threads": args.threads, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
