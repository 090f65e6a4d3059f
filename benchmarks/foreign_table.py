"""The foreign set's results as a Markdown table (a report over benchmark results, not a benchmark).

Reads every ``benchmarks/results/foreign/<key>.json`` that ``stage_times.py`` wrote for a skill of
``benchmarks/foreign`` and writes ``benchmarks/results/foreign.md``: per skill the records kept, the
seed search, the check pass rate of each condition with its 95% interval (the adapter's also on
held-out requests and on evals.json cases apart), the paired adapter − no
skill and adapter − skill in context, and whether the skill meets issue 19's bar (adapter at least
the skill in context, and above no skill with the paired interval above zero). A build that failed
is a row with its error.

    python benchmarks/foreign_table.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rate(values: dict) -> str:
    mean, interval = values["mean"], values["ci95"]
    return "–" if mean is None else f"{mean:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def difference(values: dict) -> str:
    mean, interval = values["mean"], values["ci95"]
    return "–" if mean is None else f"{mean:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


def split(pass_rate: dict) -> str:
    """The pass rate on held-out requests (skill-level checks) and on evals.json cases (their own checks too)."""
    return " / ".join("–" if pass_rate[part]["mean"] is None else f"{pass_rate[part]['mean']:.2f}"
                      for part in ("held_out", "evals"))


def row(key: str, result: dict) -> str:
    if key in result.get("failed", {}):
        # The error's first two sentences: what stopped, and the first cause it names.
        error = ". ".join(result["failed"][key].removeprefix("error: ").split(". ")[:2])
        return f"| `{key}` | build failed: {error}. |" + " |" * 9
    figures = result["skills"][key]
    dataset, evaluation, differences = figures["dataset"], figures["eval"], figures["differences"]
    search = dataset["teacher"].get("seed_search") or {}
    seeds = f"{search['found']} of {search['needed']}" if search else "not run"
    rates = {condition: evaluation[condition]["pass_rate"]["all"] for condition in evaluation}
    over_context = differences["adapter_minus_skill_in_context"]
    over_none = differences["adapter_minus_no_skill"]
    met = (rates["adapter"]["mean"] >= rates["skill_in_context"]["mean"]
           and over_none["ci95"][0] is not None and over_none["ci95"][0] > 0)
    return (f"| `{key}` | {dataset['kept']['train']} + {dataset['kept']['eval']} | {seeds} "
            f"| {rate(rates['adapter'])} | {split(evaluation['adapter']['pass_rate'])} "
            f"| {rate(rates['skill_in_context'])} | {rate(rates['no_skill'])} "
            f"| {difference(over_none)} | {difference(over_context)} | {'yes' if met else 'no'} "
            f"| {figures['chain_seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder holding foreign/<key>.json; foreign.md is written there (default: %(default)s)")
    results = parser.parse_args().results
    lines = ["| skill | records (train + eval) | seeds found | adapter | adapter: held-out / evals.json "
             "| skill in context | no skill | adapter − no skill | adapter − in context | bar met | chain s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted((results / "foreign").glob("*.json")):
        lines.append(row(path.stem, json.loads(path.read_text())))
    (results / "foreign.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
