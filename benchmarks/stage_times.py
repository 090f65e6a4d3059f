"""Time the default build per skill and stage (a benchmark, not a test).

Runs the real workflow in a fresh work directory (so nothing is reused), for the given skills up to
their eval reports (or, with ``--skills all``, the default target: every skill and the benchmark),
then prints the wall time and peak memory of every stage from Snakemake's
``benchmark:`` files and the eval report's headline numbers. The raw figures go to
``benchmarks/results/stage_times.json`` (the README's tables are made from that file); with
``--skills all`` the benchmark it built is copied to ``benchmarks/results/benchmark_default_build.*``.

    python benchmarks/stage_times.py --skills all [--configfile tests/quick.yaml]
    python benchmarks/stage_times.py --skills-dir benchmarks/foreign --skills KEY ... --json benchmarks/results/foreign.json
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s2l.engine.pipeline import CHAIN_STAGES, DATASET_REPORT, EVAL_REPORT
from s2l.engine.pipeline import STAGES as PIPELINE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "stage_times.json"
# A skill's chain, and the controls (with evaluate.controls, outside any one skill's chain).
STAGES = CHAIN_STAGES
CONTROL_STAGES = ("train_shared", "evaluate_controls")
BUILT_BENCHMARK = ROOT / "benchmarks" / "results" / "benchmark_default_build"
TARGET_SECONDS = 15 * 60


def stage_row(workdir: Path, stage: str, skill: str) -> dict[str, float]:
    with open(workdir / PIPELINE[stage].benchmark(skill)) as stream:
        row = next(csv.DictReader(stream, delimiter="\t"))
    return {"seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"])}


def skill_figures(workdir: Path, skill: str) -> dict:
    stages = {stage: stage_row(workdir, stage, skill) for stage in STAGES}
    controls = {stage: stage_row(workdir, stage, skill) for stage in CONTROL_STAGES
                if (workdir / PIPELINE[stage].benchmark(skill)).exists()}
    report = json.loads((workdir / EVAL_REPORT.format(skill=skill)).read_text())
    dataset = json.loads((workdir / DATASET_REPORT.format(skill=skill)).read_text())
    return {
        # Model jobs take every core, so they run one at a time: a skill's chain is its own stages
        # plus the shared model preparation.
        "chain_seconds": sum(row["seconds"] for row in stages.values()), "stages": stages, "controls": controls,
        "dataset": dataset,
        # What wrote the teacher's answers and the eval answers.
        "engines": {"synthesize": dataset["usage"]["teacher"].get("engine", dataset["usage"]["teacher"]["backend"]),
                    "evaluate": report["settings"]["engine"]},
        "eval": {condition: {key: values[key] for key in ("pass_rate", "reference_nll", "prompt_tokens")}
                 for condition, values in report["conditions"].items()},
        "prompts": report["prompts"], "samples_per_prompt": report["samples_per_prompt"],
        "differences": report["differences"], "token_saving": report["token_saving"],
    }


def failure(workdir: Path, skill: str) -> str:
    """The error a skill's build stopped on: the last ``error:`` line of its stage logs."""
    errors = [line for stage in STAGES for log in [workdir / PIPELINE[stage].log(skill)]
              if log.exists() for line in log.read_text(errors="replace").splitlines() if line.startswith("error:")]
    return errors[-1] if errors else "no error logged (see the snakemake output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skills", nargs="+", default=["conventional-commits"],
                        help="skills to build; 'all' builds the default target (every skill and the benchmark)")
    parser.add_argument("--skills-dir", type=Path, default=ROOT / "skills",
                        help="the folder of skills (default: the shipped ones; benchmarks/foreign: real public skills)")
    parser.add_argument("--configfile", type=Path, help="config merged over config.yaml (default: none)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the build here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the raw figures (default: %(default)s)")
    args = parser.parse_args()

    everything = args.skills == ["all"]
    skills_dir = args.skills_dir.resolve()
    skills = sorted(p.name for p in skills_dir.iterdir() if (p / "SKILL.md").is_file()) if everything else args.skills
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="s2l-bench-"))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
        "--cores", str(args.cores), *([] if everything else [EVAL_REPORT.format(skill=skill) for skill in skills]),
        "--config", f"skills_dir={skills_dir}",
    ]
    if args.configfile:
        command += ["--configfile", str(args.configfile.resolve())]
    started = time.perf_counter()
    # --keep-going: a skill that cannot be built is reported with its error; the others are measured.
    subprocess.run(command + ["--keep-going"], check=everything)
    total = time.perf_counter() - started

    failed = {skill: failure(workdir, skill) for skill in skills if not (workdir / EVAL_REPORT.format(skill=skill)).exists()}
    for skill, error in failed.items():
        print(f"\n{skill}: NOT BUILT: {error}")
    figures = {skill: skill_figures(workdir, skill) for skill in skills if skill not in failed}
    print(f"\nDefault build of {', '.join(skills)} on {args.cores} cores (workdir {workdir}); "
          f"snakemake wall time {total:.0f} s\n")
    print("| skill | " + " | ".join(STAGES) + " | chain total (s) |")
    print("|---" * (len(STAGES) + 2) + "|")
    for skill, row in figures.items():
        cells = " | ".join(f"{row['stages'][stage]['seconds']:.0f}" for stage in STAGES)
        verdict = "" if row["chain_seconds"] <= TARGET_SECONDS else " (OVER the 15-minute target)"
        print(f"| {skill} | {cells} | {row['chain_seconds']:.0f}{verdict} |")
    for skill, row in figures.items():
        dataset = row["dataset"]
        print(f"\n{skill}: dataset kept {dataset['kept']} of {dataset['input_records']}, dropped {dataset['dropped']}, "
              f"teacher raw pass rate {dataset['teacher']['raw_pass_rate']}")
        for condition, values in row["eval"].items():
            print(f"  {condition}: pass rate {values['pass_rate']['all']}, prompt tokens {values['prompt_tokens']:.0f}")
        print(f"  differences: {row['differences']}")
    if everything:
        for path in PIPELINE["benchmark"].outputs.values():
            shutil.copyfile(workdir / path, BUILT_BENCHMARK.with_suffix(Path(path).suffix))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "cores": args.cores, "configfile": str(args.configfile) if args.configfile else None,
        "target": "all" if everything else "eval reports", "total_seconds": total, "skills": figures,
        "failed": failed,
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
