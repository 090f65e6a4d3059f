"""Aggregate benchmark over every skill's eval report: JSON, a Markdown table and a chart.

Win counts are decided on the paired 95% interval of the adapter's pass rate minus another
condition's, not on point estimates: the adapter *matches or beats* a condition when the interval's
upper end is at least 0 (it is not clearly worse), and *beats* it when the lower end is above 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l.evaluate import CONDITIONS

SUMMED_USAGE = ("requests", "sent", "retries", "cache_hits", "prompt_tokens", "completion_tokens", "wall_seconds")
LABELS = {"no_skill": "no skill", "skill_in_context": "skill in context", "adapter": "adapter"}


def skill_row(report: dict[str, Any]) -> dict[str, Any]:
    conditions = report["conditions"]
    return {
        "skill": report["skill"]["key"],
        "pass_rate": {c: conditions[c]["pass_rate"]["all"]["mean"] for c in CONDITIONS},
        "pass_rate_ci95": {c: conditions[c]["pass_rate"]["all"]["ci95"] for c in CONDITIONS},
        "differences": report["differences"],
        "checked_prompts": conditions["adapter"]["pass_rate"]["all"]["n"],
        "samples_per_prompt": report["samples_per_prompt"],
        "reference_nll": {c: conditions[c]["reference_nll"]["all"] for c in CONDITIONS},
        "prompt_tokens": {c: conditions[c]["prompt_tokens"] for c in CONDITIONS},
        "token_saving": report["token_saving"],
    }


def at_least(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a >= b


def matches_or_beats(difference: dict[str, Any]) -> bool:
    return difference["ci95"] is not None and difference["ci95"][1] >= 0


def beats(difference: dict[str, Any]) -> bool:
    return difference["ci95"] is not None and difference["ci95"][0] > 0


def generation_totals(usage: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per role, the sum over skills of what generating their data took; a cost only where every
    skill has one (a price was configured)."""
    totals = {}
    for role in sorted({role for roles in usage.values() for role in roles}):
        entries = [roles[role] for roles in usage.values() if role in roles]
        costs = [entry["estimated_cost"] for entry in entries]
        totals[role] = {
            "backend": entries[0]["backend"], "model": entries[0]["model"],
            **{name: round(sum(entry[name] for entry in entries), 2) for name in SUMMED_USAGE},
            "estimated_cost": None if None in costs else round(sum(costs), 6),
        }
    return totals


def summarize(reports: list[dict[str, Any]], usage: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``usage``: per skill, its ``build/synthetic/<skill>.usage.json`` (what generation cost)."""
    rows = [skill_row(r) for r in sorted(reports, key=lambda r: r["skill"]["key"])]
    for row in rows:
        row["generation"] = (usage or {}).get(row["skill"])
    n = len(rows)

    def nll_wins(other: str) -> int:
        return sum(at_least(r["reference_nll"][other], r["reference_nll"]["adapter"]) for r in rows)

    return {
        "skills": n,
        "rows": rows,
        "wins": {
            "adapter_matches_or_beats_skill_in_context": sum(
                matches_or_beats(r["differences"]["adapter_minus_skill_in_context"]) for r in rows),
            "adapter_beats_no_skill": sum(beats(r["differences"]["adapter_minus_no_skill"]) for r in rows),
            "nll_adapter_le_skill_in_context": nll_wins("skill_in_context"),
            "nll_adapter_le_no_skill": nll_wins("no_skill"),
        },
        "mean_prompt_tokens_saved": sum(r["token_saving"]["prompt_tokens_per_request"] for r in rows) / n if n else 0,
        "generation": generation_totals({r["skill"]: r["generation"] for r in rows if r["generation"]}),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rate(mean: float | None, interval: list[float] | None) -> str:
    return "–" if mean is None else f"{mean:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _difference(difference: dict[str, Any]) -> str:
    mean, interval = difference["mean"], difference["ci95"]
    return "–" if mean is None else f"{mean:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


def markdown(summary: dict[str, Any]) -> str:
    n = summary["skills"]
    wins = summary["wins"]
    lines = [
        "| skill | pass rate [95% CI]: no skill | skill in context | adapter | adapter − in context | adapter − no skill "
        "| ref. NLL: no skill | skill in context | adapter | prompt tokens saved |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        p, ci, nll, d = row["pass_rate"], row["pass_rate_ci95"], row["reference_nll"], row["differences"]
        lines.append(
            f"| {row['skill']} | {_rate(p['no_skill'], ci['no_skill'])} "
            f"| {_rate(p['skill_in_context'], ci['skill_in_context'])} | {_rate(p['adapter'], ci['adapter'])} "
            f"| {_difference(d['adapter_minus_skill_in_context'])} | {_difference(d['adapter_minus_no_skill'])} "
            f"| {_fmt(nll['no_skill'])} | {_fmt(nll['skill_in_context'])} | {_fmt(nll['adapter'])} "
            f"| {row['token_saving']['prompt_tokens_per_request']:.0f} "
            f"({row['token_saving']['fraction']:.0%}) |"
        )
    lines += [
        "",
        f"- Check pass rate (paired 95% interval over prompts): the adapter matches or beats the full skill text "
        f"on {wins['adapter_matches_or_beats_skill_in_context']} of {n} skills; beats no skill on "
        f"{wins['adapter_beats_no_skill']} of {n}.",
        f"- Reference NLL, adapter at most skill in context on {wins['nll_adapter_le_skill_in_context']} of {n}; "
        f"at most no skill on {wins['nll_adapter_le_no_skill']} of {n}.",
        f"- Mean prompt tokens saved per request against skill in context: {summary['mean_prompt_tokens_saved']:.0f}.",
        "",
    ]
    if summary["generation"]:
        lines += ["Generating the data, all skills:", "",
                  "| role | backend | model | requests sent | from the request cache | retries | prompt tokens "
                  "| completion tokens | wall time | estimated cost |", "|---|---|---|---|---|---|---|---|---|---|"]
        for role, total in summary["generation"].items():
            cost = "–" if total["estimated_cost"] is None else f"{total['estimated_cost']:.4f}"
            lines.append(f"| {role} | {total['backend']} | {total['model']} | {total['sent']} | {total['cache_hits']} "
                         f"| {total['retries']} | {total['prompt_tokens']:,} | {total['completion_tokens']:,} "
                         f"| {total['wall_seconds']:.0f} s | {cost} |")
        lines.append("")
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
