"""Build-logic overhead of content keys: dry-run and no-op rebuild times against bare Snakemake.

For each size it generates that many skill folders in a temporary directory, lays down every output
of a finished build (the stages are stubbed: nothing runs, only the build logic is timed), then
times ``snakemake -n`` and a no-op ``snakemake --cores 1`` for the s2l workflow and for a bare
workflow of the same shape (same rules and files, SKILL.md as a plain input, no specs, no hashing),
side by side in one run. Each time is the median of ``--repeats`` runs. The raw figures go to
``benchmarks/results/rebuild_overhead.json`` (the README's table is made from that file).

    python benchmarks/rebuild_overhead.py --sizes 10 100 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "rebuild_overhead.json"
TARGET_RATIO = 1.5

BARE_SNAKEFILE = """
import glob, os
SKILLS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(config["skills_dir"] + "/*/SKILL.md"))
BENCHMARK = multiext("build/benchmark", ".json", ".md", ".png")
wildcard_constraints:
    skill=r"[a-z0-9]+(?:-[a-z0-9]+)*"
rule all:
    input: expand("build/adapters/{skill}", skill=SKILLS), BENCHMARK
rule prepare_model:
    output: directory("build/models/base")
    shell: "exit 1"
rule parse_skill:
    input: config["skills_dir"] + "/{skill}/SKILL.md", "build/models/base"
    output: "build/skills/{skill}.json"
    shell: "exit 1"
rule synthesize:
    input: skill="build/skills/{skill}.json", model="build/models/base"
    output: "build/synthetic/{skill}.jsonl"
    shell: "exit 1"
rule dataset:
    input: skill="build/skills/{skill}.json", synthetic="build/synthetic/{skill}.jsonl", model="build/models/base"
    output: records="build/datasets/{skill}.jsonl", report="build/datasets/{skill}.report.json"
    shell: "exit 1"
rule train:
    input: skill="build/skills/{skill}.json", dataset="build/datasets/{skill}.jsonl", model="build/models/base"
    output: directory("build/adapters/{skill}")
    shell: "exit 1"
rule evaluate:
    input: "build/skills/{skill}.json", "build/datasets/{skill}.jsonl", "build/models/base", "build/adapters/{skill}"
    output: "build/eval/{skill}.json"
    shell: "exit 1"
rule benchmark:
    input: expand("build/eval/{skill}.json", skill=SKILLS)
    output: BENCHMARK
    shell: "exit 1"
"""

# Outputs of a finished build, in the order the stages write them (later stages get later mtimes).
SKILL_OUTPUTS = (
    ("build/skills/{s}.json", "build/manifests/{s}/parse_skill.json"),
    ("build/synthetic/{s}.jsonl", "build/manifests/{s}/synthesize.json"),
    ("build/datasets/{s}.jsonl", "build/datasets/{s}.report.json", "build/manifests/{s}/dataset.json"),
    ("build/adapters/{s}/", "build/manifests/{s}/train.json"),
    ("build/eval/{s}.json", "build/manifests/{s}/evaluate.json"),
)
FINAL_OUTPUTS = ("build/benchmark.json", "build/benchmark.md", "build/benchmark.png", "build/manifests/benchmark.json")


def write_skills(skills_dir: Path, count: int) -> None:
    for index in range(count):
        folder = skills_dir / f"skill-{index:04d}"
        (folder / "evals").mkdir(parents=True)
        (folder / "SKILL.md").write_text(f"---\nname: skill-{index:04d}\ndescription: Skill {index}.\n---\nDo {index}.\n")
        (folder / "evals" / "evals.json").write_text(json.dumps(
            {"skill_name": folder.name, "evals": [{"id": 1, "prompt": "p", "expected_output": "o"}]}))


def lay_down(workdir: Path, path: str, mtime: float) -> None:
    target = workdir / path
    if path.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
        (target / "file").write_text("x")
        os.utime(target / "file", (mtime, mtime))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x")
    os.utime(target, (mtime, mtime))


def lay_down_build(workdir: Path, skills: list[str], with_manifests: bool) -> None:
    """Every output of a finished build, each newer than what it is built from."""
    start = time.time() - 1000
    sources = [*(workdir / "build" / "specs").rglob("*.json"), *Path(workdir.parent / "skills").rglob("*")]
    for source in sources:
        os.utime(source, (start, start))
    lay_down(workdir, "build/models/base/", start + 1)
    if with_manifests:
        lay_down(workdir, "build/manifests/prepare_model.json", start + 1)
    for stage, paths in enumerate(SKILL_OUTPUTS, start=2):
        for skill in skills:
            for path in paths:
                if with_manifests or "/manifests/" not in path:
                    lay_down(workdir, path.format(s=skill), start + stage)
    for path in FINAL_OUTPUTS:
        if with_manifests or "/manifests/" not in path:
            lay_down(workdir, path, start + 10)


def timed(command: list[str], cwd: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "Nothing to be done" not in output:
            raise SystemExit(f"expected a no-op in {cwd}:\n{output[-3000:]}")
    return statistics.median(times)


def measure(count: int, repeats: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix=f"s2l-overhead-{count}-"))
    write_skills(root / "skills", count)
    skills = sorted(p.name for p in (root / "skills").iterdir())
    snakemake = [sys.executable, "-m", "snakemake", "--workflow-profile", "none", "--config", f"skills_dir={root / 'skills'}"]

    ours = root / "s2l"
    ours.mkdir()
    ours_cmd = [*snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(ours)]
    subprocess.run([*ours_cmd, "-n", "--quiet"], check=True, capture_output=True)  # writes the specs
    lay_down_build(ours, skills, with_manifests=True)

    bare = root / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(BARE_SNAKEFILE)
    bare_cmd = [*snakemake, "-s", str(bare / "Snakefile"), "-d", str(bare)]
    lay_down_build(bare, skills, with_manifests=False)

    return {
        "skills": count,
        "bare_dry_run_s": timed([*bare_cmd, "-n"], bare, repeats),
        "s2l_dry_run_s": timed([*ours_cmd, "-n"], ours, repeats),
        "bare_noop_s": timed([*bare_cmd, "--cores", "1"], bare, repeats),
        "s2l_noop_s": timed([*ours_cmd, "--cores", "1"], ours, repeats),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the raw figures (default: %(default)s)")
    args = parser.parse_args()

    rows = [measure(count, args.repeats) for count in args.sizes]
    print("| skills | dry run: bare (s) | s2l (s) | ratio | no-op build: bare (s) | s2l (s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for row in rows:
        dry, noop = row["s2l_dry_run_s"] / row["bare_dry_run_s"], row["s2l_noop_s"] / row["bare_noop_s"]
        worst = max(worst, dry, noop)
        print(f"| {row['skills']} | {row['bare_dry_run_s']:.2f} | {row['s2l_dry_run_s']:.2f} | {dry:.2f}x "
              f"| {row['bare_noop_s']:.2f} | {row['s2l_noop_s']:.2f} | {noop:.2f}x |")
    print(f"\nworst ratio {worst:.2f}x: {'within' if worst <= TARGET_RATIO else 'OVER'} the {TARGET_RATIO}x target")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cores": os.cpu_count(), "repeats": args.repeats, "worst_ratio": worst,
                                     "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
