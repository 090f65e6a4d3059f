"""How well model ``auto`` picks the skill a request needs (s2l/models/routing.py; a benchmark, not a test).

Served: the three shipped skills and two foreign skills with other tasks (a Gherkin scenario, a
branch name), routed by their own names and descriptions. Asked:

- every served skill's evals.json prompts (its own task);
- the evals.json prompts of the four foreign commit-message skills (requests written for other
  skills of the same task: the right route is conventional-commits);
- with ``--build DIR``, the held-out requests of each shipped skill's dataset in that build (what
  the generator wrote, never seen by the router);
- requests of no served skill (``OFF_TOPIC`` below): the right route is none, the base model.

Prints, for several thresholds, the share routed right and the false-trigger rate, and at the
default threshold the confusion table; writes everything to ``benchmarks/results/routing.json``.

    python benchmarks/routing.py [--build /tmp/s2l-bench-xyz/build]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from s2l.models.routing import DEFAULT_THRESHOLD, Router
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "routing.json"
SHIPPED = ("conventional-commits", "google-docstrings", "keep-a-changelog")
FOREIGN_SERVED = ("andeeplus-gherkin", "perkzen-branch-naming")
FOREIGN_COMMITS = ("bohdanmoroziuk-commit-message", "contextosai-commit-message", "mrmoosaai-git-commit-formatter",
                   "vmram95-conventional-commits")
THRESHOLDS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40)
NONE = "none"
# Requests an agent gets that none of the served skills is for.
OFF_TOPIC = (
    "What is the capital of Australia?",
    "Write a SQL query that returns the ten customers with the highest total order value.",
    "Explain the difference between a process and a thread in two sentences.",
    "Translate 'Where is the train station?' into Spanish.",
    "Refactor this loop into a list comprehension: result = []\nfor x in items:\n    result.append(x * 2)",
    "Suggest three names for a coffee shop near a university.",
    "How do I undo the last git push without losing my local work?",
    "Summarise this paragraph in one sentence: The meeting moved to Thursday because the venue was booked.",
    "Write a haiku about autumn rain.",
    "Why does my Python script raise KeyError: 'id' when the JSON has no id field?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "Draft a polite email declining a meeting invitation for next Monday.",
)


def evals_prompts(folder: Path) -> list[str]:
    return [case["prompt"] for case in json.loads((folder / "evals" / "evals.json").read_text())["evals"]]


def held_out_requests(build: Path, key: str) -> list[str]:
    records = [json.loads(line) for line in (build / "datasets" / f"{key}.jsonl").read_text().splitlines()]
    return [record["messages"][0]["content"] for record in records if record["split"] == "eval"]


def asked(build: Path | None) -> list[tuple[str, str, str]]:
    """(set, expected route, request) for every request asked."""
    rows = [("evals.json", key, prompt) for key in SHIPPED for prompt in evals_prompts(ROOT / "skills" / key)]
    rows += [("evals.json", key, prompt) for key in FOREIGN_SERVED
             for prompt in evals_prompts(ROOT / "benchmarks" / "foreign" / key)]
    rows += [("other commit skills' evals.json", "conventional-commits", prompt) for key in FOREIGN_COMMITS
             for prompt in evals_prompts(ROOT / "benchmarks" / "foreign" / key)]
    if build is not None:
        rows += [("held-out requests", key, request) for key in SHIPPED for request in held_out_requests(build, key)]
    rows += [("no served skill", NONE, request) for request in OFF_TOPIC]
    return rows


def scored(router: Router, rows: list[tuple[str, str, str]]) -> dict:
    routed = [(expected, router.route(request).skill or NONE, group) for group, expected, request in rows]
    on_skill = [(expected, got) for expected, got, _ in routed if expected != NONE]
    off_skill = [got for expected, got, _ in routed if expected == NONE]
    per_skill = {key: {"asked": sum(e == key for e, _ in on_skill),
                       "right": sum(e == key and g == key for e, g in on_skill)}
                 for key in sorted({e for e, _ in on_skill})}
    return {
        "threshold": router.threshold,
        "accuracy": sum(e == g for e, g in on_skill) / len(on_skill),
        "false_triggers": sum(g != NONE for g in off_skill) / len(off_skill),
        "per_skill": per_skill,
        "per_set": {group: sum(e == g for e, g, s in routed if s == group) / sum(s == group for *_, s in routed)
                    for group in dict.fromkeys(s for *_, s in routed)},
        "confusion": {expected: dict(Counter(g for e, g, _ in routed if e == expected))
                      for expected in dict.fromkeys(e for e, _, _ in routed)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, help="a build folder whose shipped skills' datasets give held-out requests")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    folders = [ROOT / "skills" / key for key in SHIPPED] + [ROOT / "benchmarks" / "foreign" / key for key in FOREIGN_SERVED]
    skills = [load_skill(folder) for folder in folders]
    descriptions = {skill.key: f"{skill.name}: {skill.description}" for skill in skills}
    rows = asked(args.build)
    sweep = [scored(Router(descriptions, threshold), rows) for threshold in THRESHOLDS]
    default = scored(Router(descriptions, DEFAULT_THRESHOLD), rows)
    print(f"{len(rows)} requests: " + ", ".join(f"{group} {count}" for group, count in
                                                  Counter(group for group, _, _ in rows).items()))
    print("\n| threshold | routed right (requests of a served skill) | false triggers (requests of none) |\n|---|---|---|")
    for row in sweep:
        print(f"| {row['threshold']:.2f} | {row['accuracy']:.2f} | {row['false_triggers']:.2f} |")
    names = [*descriptions, NONE]
    print(f"\nAt the default threshold {DEFAULT_THRESHOLD}: rows the right route, columns where auto sent it\n")
    print("| asked for | " + " | ".join(names) + " | routed right |\n" + "|---" * (len(names) + 2) + "|")
    for expected, counts in default["confusion"].items():
        print(f"| {expected} | " + " | ".join(str(counts.get(name, 0)) for name in names)
              + f" | {counts.get(expected, 0)} of {sum(counts.values())} |")
    print("\nPer set: " + ", ".join(f"{group} {share:.2f}" for group, share in default["per_set"].items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"served": list(descriptions), "requests": len(rows),
                                     "build": str(args.build) if args.build else None,
                                     "default": default, "sweep": sweep}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
