"""Print the README's default-build tables from the results files (so no figure is typed by hand).

Reads ``benchmarks/results/stage_times.json`` and ``benchmarks/results/benchmark_default_build.md``,
both written by ``python benchmarks/stage_times.py --skills all``, and prints Markdown: the benchmark
as the build wrote it, each condition's pass rate by source (held-out requests, evals.json
cases), time per skill and stage (the controls' stages included), and what the
teacher did per skill; and, from ``train_throughput.json`` (``benchmarks/train_throughput.py``),
the training throughput table.

    python benchmarks/readme_tables.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stage_times import CONTROL_STAGES, STAGES

from s2l.reports.report import rate_text

RESULTS = Path(__file__).resolve().parent / "results"


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def stage_table(figures: dict) -> list[str]:
    stages = STAGES + tuple(stage for stage in CONTROL_STAGES
                            if any(stage in row.get("controls", {}) for row in figures["skills"].values()))
    lines = [f"| skill | {' | '.join(stages)} | own chain |", "|---" * (len(stages) + 2) + "|"]
    for skill, row in figures["skills"].items():
        seconds = {**row["stages"], **row.get("controls", {})}
        cells = " | ".join(f"{seconds[stage]['seconds']:.0f}" if stage in seconds else "–" for stage in stages)
        lines.append(f"| {skill} | {cells} | {minutes(row['chain_seconds'])} |")
    lines.append("")
    lines.append(f"Whole target: {minutes(figures['total_seconds'])} on {figures['cores']} cores "
                 "(train_shared is one job for all skills, shown on every row).")
    return lines


def source_table(figures: dict) -> list[str]:
    lines = ["| skill | condition | held-out | evals.json | ref. NLL held-out | ref. NLL evals.json | prompt tokens |",
             "|---|---|---|---|---|---|---|"]
    for skill, row in figures["skills"].items():
        for condition, values in row["eval"].items():
            held_out, evals = (rate_text(values["pass_rate"][source]["mean"], values["pass_rate"][source]["ci95"])
                               for source in ("held_out", "evals"))
            nll = values["reference_nll"]
            lines.append(f"| {skill} | {condition.replace('_', ' ')} | {held_out} | {evals} | {nll['held_out']:.2f} | "
                         f"{nll['evals']:.2f} | {values['prompt_tokens']:.0f} |")
    return lines


def teacher_table(figures: dict) -> list[str]:
    lines = ["| skill | raw teacher pass rate | requests without a passing answer | kept train + held-out | dropped |",
             "|---|---|---|---|---|"]
    for skill, row in figures["skills"].items():
        dataset, teacher = row["dataset"], row["dataset"]["teacher"]
        dropped = ", ".join(f"{reason} {count}" for reason, count in dataset["dropped"].items()) or "none"
        lines.append(f"| {skill} | {teacher['answers_passing_checks']}/{teacher['answers_tried']} = "
                     f"{teacher['raw_pass_rate']:.2f} | {teacher['requests_without_passing_answer']} | "
                     f"{dataset['kept']['train']} + {dataset['kept']['eval']} | {dropped} |")
    return lines


def throughput_table(figures: dict) -> list[str]:
    """s2l's trainer against the plain Trainer (benchmarks/train_throughput.py)."""
    lines = ["| trainer | tokens/s | peak RSS | tokens per step | final loss |", "|---|---|---|---|---|"]
    names = {"plain": "plain `Trainer`, padded to the longest", "s2l": "s2l: packed, answer-only logits"}
    for trainer, row in figures["summary"].items():
        lines.append(f"| {names[trainer]} | {row['tokens_per_second']:.0f} | {row['peak_rss_mib']:,.0f} MiB | "
                     f"{row['tokens_per_step']:.0f} | {row['final_loss']:.4f} |")
    lines.append("")
    lines.append(f"s2l vs plain: **{figures['speedup']:.2f}x** tokens/s (target {figures['target_speedup']}x), "
                 f"peak RSS x{figures['memory_ratio']:.2f}; largest difference of a step's loss between the two "
                 f"{figures['max_loss_difference']:.1e}.")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files (default: %(default)s)")
    args = parser.parse_args()
    figures = json.loads((args.results / "stage_times.json").read_text())
    if figures["target"] != "all":
        parser.error(f"{args.results / 'stage_times.json'}: target: {figures['target']!r}, not a default build "
                     "(python benchmarks/stage_times.py --skills all)")
    print((args.results / "benchmark_default_build.md").read_text().rstrip())
    print()
    print("\n".join(source_table(figures)))
    print()
    print("\n".join(stage_table(figures)))
    print()
    print("\n".join(teacher_table(figures)))
    throughput = args.results / "train_throughput.json"
    if throughput.is_file():
        print()
        print("\n".join(throughput_table(json.loads(throughput.read_text()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
