"""Aggregate benchmark over every skill's eval report: JSON, a Markdown table and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l.evaluate import CONDITIONS

LABELS = {"no_skill": "no skill", "skill_in_context": "skill in context", "adapter": "adapter"}


def skill_row(report: dict[str, Any]) -> dict[str, Any]:
    conditions = report["conditions"]
    return {
        "skill": report["skill"]["key"],
        "pass_rate": {c: conditions[c]["pass_rate"]["all"]["mean"] for c in CONDITIONS},
        "checked_answers": conditions["adapter"]["pass_rate"]["all"]["n"],
        "reference_nll": {c: conditions[c]["reference_nll"]["all"] for c in CONDITIONS},
        "prompt_tokens": {c: conditions[c]["prompt_tokens"] for c in CONDITIONS},
        "token_saving": report["token_saving"],
    }


def at_least(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a >= b


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [skill_row(r) for r in sorted(reports, key=lambda r: r["skill"]["key"])]
    n = len(rows)

    def wins(metric: str, other: str, lower_is_better: bool = False) -> int:
        if lower_is_better:
            return sum(at_least(r[metric][other], r[metric]["adapter"]) for r in rows)
        return sum(at_least(r[metric]["adapter"], r[metric][other]) for r in rows)

    return {
        "skills": n,
        "rows": rows,
        "wins": {
            "pass_rate_adapter_ge_skill_in_context": wins("pass_rate", "skill_in_context"),
            "pass_rate_adapter_ge_no_skill": wins("pass_rate", "no_skill"),
            "nll_adapter_le_skill_in_context": wins("reference_nll", "skill_in_context", lower_is_better=True),
            "nll_adapter_le_no_skill": wins("reference_nll", "no_skill", lower_is_better=True),
        },
        "mean_prompt_tokens_saved": sum(r["token_saving"]["prompt_tokens_per_request"] for r in rows) / n if n else 0,
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    n = summary["skills"]
    wins = summary["wins"]
    lines = [
        "| skill | pass rate: no skill | skill in context | adapter | ref. NLL: no skill | skill in context "
        "| adapter | prompt tokens saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        p, nll = row["pass_rate"], row["reference_nll"]
        lines.append(
            f"| {row['skill']} | {_fmt(p['no_skill'])} | {_fmt(p['skill_in_context'])} | {_fmt(p['adapter'])} "
            f"| {_fmt(nll['no_skill'])} | {_fmt(nll['skill_in_context'])} | {_fmt(nll['adapter'])} "
            f"| {row['token_saving']['prompt_tokens_per_request']:.0f} "
            f"({row['token_saving']['fraction']:.0%}) |"
        )
    lines += [
        "",
        f"- Pass rate, adapter at least as good as skill in context on {wins['pass_rate_adapter_ge_skill_in_context']} "
        f"of {n} skills; at least as good as no skill on {wins['pass_rate_adapter_ge_no_skill']} of {n}.",
        f"- Reference NLL, adapter at most skill in context on {wins['nll_adapter_le_skill_in_context']} of {n}; "
        f"at most no skill on {wins['nll_adapter_le_no_skill']} of {n}.",
        f"- Mean prompt tokens saved per request against skill in context: {summary['mean_prompt_tokens_saved']:.0f}.",
        "",
    ]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(CONDITIONS)
    for axis, metric, title in ((axes[0], "pass_rate", "check pass rate (higher is better)"),
                                (axes[1], "reference_nll", "reference NLL (lower is better)")):
        for offset, condition in enumerate(CONDITIONS):
            values = [row[metric][condition] or 0 for row in rows]
            axis.bar([i + offset * width for i in range(len(rows))], values, width, label=LABELS[condition])
        axis.set_xticks([i + width for i in range(len(rows))], [row["skill"] for row in rows], rotation=20)
        axis.set_title(title)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
