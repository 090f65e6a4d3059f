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
sys.path.insert(0, str(ROOT))
from s2l.engine.config import default_config  # noqa: E402
from s2l.engine.pipeline import ADAPTER, STAGES, Stage, manifest_path  # noqa: E402
from s2l.skills.skill import SKILL_KEY_PATTERN  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rebuild_overhead.json"
TARGET_RATIO = 1.5



def default_stages() -> list[Stage]:
    """The stages the default target builds, in build order (the declarations are in that order)."""
    config = default_config()
    left_out = set() if config["merge"]["enabled"] else {"merge"}
    if not config["evaluate"]["controls"]:
        left_out |= {"train_shared", "evaluate_controls"}
    return [stage for name, stage in STAGES.items() if name not in left_out]


def bare_snakefile(stages: list[Stage]) -> str:
    """A workflow of the same shape as s2l's: the same rules and files, each rule reading the main
    (first declared) output of the stages its declaration names (the unkeyed one of those it reads
    facts from), SKILL.md a plain input; no specs, no manifests, no hashing."""
    def main_output(name: str, skill: str) -> str:
        stage = STAGES[name]
        return stage.output(next(iter(stage.outputs)), skill)

    def wrapped(stage: Stage, name: str) -> str:
        return f"directory({stage.outputs[name]!r})" if name in stage.folders else repr(stage.outputs[name])

    final = [stage for stage in stages if not stage.per_skill and stage.other_skills][-1]
    lines = ["import glob, os",
             'SKILLS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(config["skills_dir"] + "/*/SKILL.md"))',
             "OTHER = dict(zip(SKILLS, SKILLS[1:] + SKILLS[:1]))",
             "wildcard_constraints:", f"    skill=r{SKILL_KEY_PATTERN!r}",
             "rule all:", f"    input: expand({ADAPTER!r}, skill=SKILLS), {list(final.outputs.values())!r}"]
    for stage in stages:
        inputs = ['config["skills_dir"] + "/{skill}/SKILL.md"'] if stage.name == "parse_skill" else []
        for name in stage.upstream:
            inputs.append(repr(main_output(name, "{skill}" if STAGES[name].per_skill else "")))
        for name in stage.other_skills:
            if stage.per_skill:  # another skill's (the wrong adapter)
                inputs.append(f"lambda w: {main_output(name, '{skill}')!r}.format(skill=OTHER[w.skill])")
            else:
                inputs.append(f"expand({main_output(name, '{skill}')!r}, skill=SKILLS)")
        for name in stage.facts_from:
            facts = STAGES[name].outputs[STAGES[name].unkeyed_outputs[0]]
            inputs.append(f"expand({facts!r}, skill=SKILLS)")
        lines += [f"rule {stage.name}:", f"    input: {', '.join(inputs)}" if inputs else "",
                  f"    output: {', '.join(wrapped(stage, name) for name in stage.outputs)}", '    shell: "exit 1"']
    return "\n".join(line for line in lines if line) + "\n"


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


def lay_down_build(workdir: Path, skills: list[str], stages: list[Stage], with_manifests: bool) -> None:
    """Every output of a finished build, each stage's newer than what it is built from."""
    start = time.time() - 1000
    sources = [*(workdir / "build" / "specs").rglob("*.json"), *Path(workdir.parent / "skills").rglob("*")]
    for source in sources:
        os.utime(source, (start, start))
    for step, stage in enumerate(stages, start=1):
        for skill in skills if stage.per_skill else [None]:
            paths = [stage.output(name, skill or "") + ("/" if name in stage.folders else "") for name in stage.outputs]
            if with_manifests:
                paths.append(str(manifest_path(stage.name, skill)))
            for path in paths:
                lay_down(workdir, path, start + step)


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
    stages = default_stages()
    lay_down_build(ours, skills, stages, with_manifests=True)

    bare = root / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(bare_snakefile(stages))
    bare_cmd = [*snakemake, "-s", str(bare / "Snakefile"), "-d", str(bare)]
    lay_down_build(bare, skills, stages, with_manifests=False)

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
