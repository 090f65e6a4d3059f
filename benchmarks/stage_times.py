"""Time the default one-skill build per stage (a benchmark, not a test).

Runs the real workflow in a fresh work directory (so nothing is reused), for one skill up to its
eval report, then prints the wall time and peak memory of every stage from Snakemake's
``benchmark:`` files and the eval report's headline numbers. The raw figures go to
``benchmarks/results/stage_times.json`` (the README's tables are made from that file).

    python benchmarks/stage_times.py --skill conventional-commits [--configfile tests/quick.yaml]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "stage_times.json"
STAGES = ("prepare_model", "parse_skill", "synthesize", "dataset", "train", "evaluate")
TARGET_SECONDS = 15 * 60


def stage_row(workdir: Path, stage: str, skill: str) -> dict[str, float]:
    single = workdir / "build" / "benchmarks" / f"{stage}.tsv"
    path = single if single.exists() else workdir / "build" / "benchmarks" / stage / f"{skill}.tsv"
    with open(path) as stream:
        row = next(csv.DictReader(stream, delimiter="\t"))
    return {"seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skill", default="conventional-commits")
    parser.add_argument("--configfile", type=Path, help="config merged over config.yaml (default: none)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the build here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the raw figures (default: %(default)s)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="s2l-bench-"))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
        "--cores", str(args.cores), f"build/eval/{args.skill}.json",
        "--config", f"skills_dir={ROOT / 'skills'}",
    ]
    if args.configfile:
        command += ["--configfile", str(args.configfile.resolve())]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    total = time.perf_counter() - started

    stages = {stage: stage_row(workdir, stage, args.skill) for stage in STAGES}
    report = json.loads((workdir / "build" / "eval" / f"{args.skill}.json").read_text())
    dataset = json.loads((workdir / "build" / "datasets" / f"{args.skill}.report.json").read_text())
    print(f"\nOne-skill build of {args.skill!r} on {args.cores} cores (workdir {workdir})\n")
    print("| stage | wall time (s) | peak RSS (MB) |\n|---|---|---|")
    for stage, row in stages.items():
        print(f"| {stage} | {row['seconds']:.0f} | {row['max_rss_mb']:.0f} |")
    print(f"| **total (snakemake wall time)** | **{total:.0f}** | |")
    verdict = "within" if total <= TARGET_SECONDS else "OVER"
    print(f"\n{verdict} the {TARGET_SECONDS // 60}-minute target for the full default chain")
    print(f"dataset: kept {dataset['kept']} of {dataset['input_records']}, dropped {dataset['dropped']}")
    for condition, values in report["conditions"].items():
        print(f"{condition}: pass rate {values['pass_rate']['all']}, reference NLL "
              f"{values['reference_nll']['all']:.3f}, prompt tokens {values['prompt_tokens']:.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "skill": args.skill, "cores": args.cores, "configfile": str(args.configfile) if args.configfile else None,
        "total_seconds": total, "stages": stages, "dataset": dataset,
        "eval": {condition: {key: values[key] for key in ("pass_rate", "reference_nll", "prompt_tokens")}
                 for condition, values in report["conditions"].items()},
        "prompts": report["prompts"], "samples_per_prompt": report["samples_per_prompt"],
        "differences": report["differences"], "token_saving": report["token_saving"],
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
