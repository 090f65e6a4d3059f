"""Aggregate benchmark over every skill's eval report: JSON, a Markdown table and a chart; and one
skill's eval report as Markdown.

Win counts are decided on the paired 95% interval of the adapter's pass rate minus another
condition's, not on point estimates: the adapter *matches or beats* a condition when the interval's
upper end is at least 0 (it is not clearly worse), and *beats* it when the lower end is above 0. A
skill on which every condition passes nothing says nothing either way: it is reported as
uninformative and left out of the win counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l.evaluate import CONDITIONS

SUMMED_USAGE = ("requests", "sent", "retries", "cache_hits", "prompt_tokens", "completion_tokens", "wall_seconds")
SIDE_BY_SIDE = 3  # prompts an eval report shows with every condition's first answer
FENCE = "~~~~"  # answers may hold ``` fences of their own
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
        "informative": any(conditions[c]["pass_rate"]["all"]["mean"] for c in CONDITIONS),
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
    informative = [r for r in rows if r["informative"]]

    def nll_wins(other: str) -> int:
        return sum(at_least(r["reference_nll"][other], r["reference_nll"]["adapter"]) for r in rows)

    return {
        "skills": n,
        "rows": rows,
        "informative_skills": len(informative),
        "uninformative_skills": [r["skill"] for r in rows if not r["informative"]],
        "wins": {
            "adapter_matches_or_beats_skill_in_context": sum(
                matches_or_beats(r["differences"]["adapter_minus_skill_in_context"]) for r in informative),
            "adapter_beats_no_skill": sum(beats(r["differences"]["adapter_minus_no_skill"]) for r in informative),
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
    n, informative = summary["skills"], summary["informative_skills"]
    wins = summary["wins"]
    uninformative = summary["uninformative_skills"]
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
        f"on {wins['adapter_matches_or_beats_skill_in_context']} of {informative} informative skills; beats no "
        f"skill on {wins['adapter_beats_no_skill']} of {informative}."
        + (f" Uninformative (every condition passed nothing): {', '.join(uninformative)}." if uninformative else ""),
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


def _verdict(passed: list[bool] | None) -> str:
    return "no checks" if passed is None else f"{sum(passed)} of {len(passed)} sampled answers pass"


def eval_markdown(report: dict[str, Any]) -> str:
    """One skill's eval report for people: per condition the pass rates with intervals, the paired
    differences, and the first answers of each condition to a few prompts, side by side."""
    conditions = report["conditions"]
    prompts = report["prompts"]
    lines = [
        f"# {report['skill']['key']}: evaluation", "",
        f"{prompts['held_out']} held-out requests and {prompts['evals']} evals.json prompts, "
        f"{report['samples_per_prompt']} sampled answers per prompt and condition. Check pass rate: the mean over "
        f"prompts of the share of answers passing every check, with a 95% bootstrap interval over prompts.", "",
        "| condition | pass rate, all | held-out | evals.json | reference NLL | prompt tokens |",
        "|---|---|---|---|---|---|",
    ]
    for condition in CONDITIONS:
        values = conditions[condition]
        rates = [_rate(values["pass_rate"][source]["mean"], values["pass_rate"][source]["ci95"])
                 for source in ("all", "held_out", "evals")]
        lines.append(f"| {LABELS[condition]} | {' | '.join(rates)} | {_fmt(values['reference_nll']['all'])} "
                     f"| {values['prompt_tokens']:.0f} |")
    differences, saving = report["differences"], report["token_saving"]
    lines += [
        "",
        f"Adapter − skill in context: {_difference(differences['adapter_minus_skill_in_context'])}; adapter − no "
        f"skill: {_difference(differences['adapter_minus_no_skill'])} (paired over prompts). The adapter saves "
        f"{saving['prompt_tokens_per_request']:.0f} prompt tokens per request ({saving['fraction']:.0%}).",
        "",
        "## Answers side by side",
    ]
    for index, first in enumerate(conditions[CONDITIONS[0]]["answers"][:SIDE_BY_SIDE]):
        lines += ["", f"### {first['id']} ({first['source'].replace('_', '-')})", "", FENCE, first["request"], FENCE]
        for condition in CONDITIONS:
            answer = conditions[condition]["answers"][index]
            lines += ["", f"**{LABELS[condition]}** ({_verdict(answer['passed'])}):", "", FENCE, answer["answers"][0],
                      FENCE]
    return "\n".join(lines) + "\n"
