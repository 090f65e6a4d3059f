"""Dataset checks: validate synthetic records, filter them with a count per reason, and write
training records that keep the request and the teacher's answer but drop the skill text.

The report also says what the teacher's rejection sampling did: the answers it tried, how many
passed the skill's checks (the raw pass rate), and how many requests found no passing answer; how
varied the training answers are (their shapes); and, when too few records survive, why."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from s2l.data.form import answer_shape, shape_limits, skill_form
from s2l.errors import UserError
from s2l.models.chat import supervised_ids
from s2l.schemas import SchemaError, validate
from s2l.skills.overlap import CopyFilter, NearDuplicates, normalize
from s2l.skills.skill import Skill

SYNTHETIC_SCHEMA = "synthetic_record.schema.json"
DATASET_SCHEMA = "dataset_record.schema.json"
SPLITS = ("train", "eval")


def record_features():
    """The ``datasets`` features of a dataset record (s2l/schemas/dataset_record.schema.json), so that
    ``load_dataset("json", data_files=..., features=record_features())`` reads a built JSONL with
    declared types; ``source`` (how the record was made) stays free-form JSON."""
    from datasets import Features, Json, List, Value

    text = Value("string")
    return Features({"id": text, "split": text, "messages": List({"role": text, "content": text}),
                     "skill": {"key": text, "name": text, "sha256": text}, "source": Json()})


class DatasetError(UserError):
    """Too few usable records to train or evaluate on."""


@dataclass(frozen=True)
class DatasetSettings:
    """The ``dataset`` section of the config (defaults: config.yaml)."""

    max_seq_len: int
    min_train_records: int
    min_eval_records: int
    copy_ngram_words: int
    max_shape_share: float


def rejection_reason(
    record: dict[str, Any],
    seen_requests: set[str],
    skill_text: CopyFilter,
    evals: NearDuplicates,
    settings: DatasetSettings,
    token_count: Callable[[dict[str, Any]], int],
) -> str | None:
    """Why a synthetic record cannot become training data, or None when it can."""
    try:
        validate(record, SYNTHETIC_SCHEMA)
    except SchemaError:
        return "invalid_record"
    if not record["answer"].strip():
        return "empty_answer"
    if record["finish_reason"] != "stop":
        return "truncated_answer"
    if record.get("passed_checks") is False and record["teacher"].get("filter_by_checks"):
        return "failed_judge" if record["teacher"].get("judge") else "failed_checks"
    if evals.find(record["request"]):
        return "near_evals_prompt"
    request_key = normalize(record["request"])
    if request_key in seen_requests:
        return "duplicate_request"
    seen_requests.add(request_key)
    if token_count(record) > settings.max_seq_len:
        return "longer_than_max_seq_len"
    if skill_text.copies(record["answer"]):
        return "copies_skill_text"
    return None


def training_record(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "split": record["split"],
        "messages": [
            {"role": "user", "content": record["request"]},
            {"role": "assistant", "content": record["answer"]},
        ],
        "skill": record["skill"],
        "source": {key: record[key] for key in ("generator", "teacher", "seed")},
    }


def diversity(answers: list[str], opening: str = "") -> dict[str, Any]:
    """How varied answers are: the count per answer shape (past the ``opening`` they all share), the
    share of the largest, and the entropy of the shapes as a share of its maximum (1.0: every shape
    equally often; 0.0: one shape)."""
    shapes = Counter(answer_shape(answer, opening) for answer in answers)
    total = sum(shapes.values())
    entropy = -sum(n / total * math.log(n / total) for n in shapes.values()) if total else 0.0
    return {"shapes": dict(shapes.most_common()), "distinct": len(shapes),
            "largest_share": round(max(shapes.values()) / total, 4) if total else None,
            "normalized_entropy": round(entropy / math.log(len(shapes)), 4) if len(shapes) > 1 else 0.0}


def teacher_summary(records: list[dict[str, Any]], skill: Skill) -> dict[str, Any]:
    """What rejection sampling did: budget, answers tried, raw pass rate, requests with no passing
    answer, the seed search, and per check the answers that failed it."""
    teacher = records[0]["teacher"] if records else {}
    tried = sum(record.get("samples", 1) for record in records)
    passed = sum(record.get("passed_checks") is True for record in records)
    summary = {
        "skill_checks": len(skill.checks),
        "filter_by_checks": bool(teacher.get("filter_by_checks")) and bool(skill.checks),
        "samples_per_request": teacher.get("samples"),
        # As many as there were to show, up to synthesize.teacher_examples: the most any answer saw.
        "examples_shown": max((len(record.get("shown_examples", [])) for record in records), default=0),
        # The skill's own demonstrations the teacher could be shown (those with a request).
        "skill_examples": len(skill.worked_pairs),
        "seed_search": teacher.get("seed_search"),
        "check_failures": teacher.get("check_failures", {}),
        "answers_tried": tried,
        "answers_passing_checks": passed,
        "raw_pass_rate": passed / tried if tried and skill.checks else None,
        "requests_without_passing_answer": sum(record.get("passed_checks") is False for record in records),
    }
    if not skill.checks:
        summary["note"] = "the skill has no machine checks in evals.json: nothing was filtered by checks"
    return summary


def build_dataset(
    records: Iterable[dict[str, Any]], skill: Skill, tokenizer, settings: DatasetSettings
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return (training records, report). Raises DatasetError when too few survive."""

    def token_count(record: dict[str, Any]) -> int:
        # The student sees no skill text, so the length that matters is request + answer alone.
        ids, _ = supervised_ids(tokenizer, [{"role": "user", "content": record["request"]}], record["answer"])
        return len(ids)

    skill_text = CopyFilter(skill.text, settings.copy_ngram_words)
    evals = NearDuplicates([case["prompt"] for case in skill.evals])
    opening = skill_form(skill).opening
    seen: set[str] = set()
    candidates: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    records = list(records)
    for record in records:
        reason = rejection_reason(record, seen, skill_text, evals, settings, token_count)
        if reason:
            dropped[reason] += 1
        else:
            candidates.append(record)
    # No one answer shape may take more than max_shape_share of the training answers: the latest of an
    # over-represented shape go, but never so many that fewer than min_train_records are left (a bound
    # that empties the build helps no one; the report then says the bound was not met).
    shapes = [answer_shape(record["answer"], opening) for record in candidates]
    limits = shape_limits(Counter(shape for shape, r in zip(shapes, candidates) if r["split"] == "train"),
                          settings.max_shape_share)
    over = []
    for index, (shape, record) in enumerate(zip(shapes, candidates)):
        if record["split"] == "train":
            if limits[shape] == 0:
                over.append(index)
            else:
                limits[shape] -= 1
    train = sum(record["split"] == "train" for record in candidates)
    readmitted = set(over[:max(0, settings.min_train_records - (train - len(over)))])
    dropped["over_shape_share"] += len(over) - len(readmitted)
    if not dropped["over_shape_share"]:
        del dropped["over_shape_share"]
    kept: list[dict[str, Any]] = []
    for index, record in enumerate(candidates):
        if index in readmitted or index not in over:
            output = training_record(record)
            validate(output, DATASET_SCHEMA)
            kept.append(output)

    counts = {split: sum(r["split"] == split for r in kept) for split in SPLITS}
    report = {
        "skill": skill.identity,
        "input_records": len(records),
        "kept": counts,
        "dropped": dict(sorted(dropped.items())),
        # Generated texts that never became a request (malformed JSON, cut off, near an evals.json prompt, ...).
        "generator_dropped": records[0]["generator"].get("requests_dropped", {}) if records else {},
        "generator_rounds": records[0]["generator"].get("rounds", []) if records else [],
        "teacher": teacher_summary(records, skill),
        "diversity": {**diversity([r["messages"][1]["content"] for r in kept if r["split"] == "train"], opening),
                      "max_shape_share": settings.max_shape_share, "bound_met": not readmitted},
        "warnings": skill.warnings,
        "settings": settings.__dict__,
    }
    minimum = {"train": settings.min_train_records, "eval": settings.min_eval_records}
    short = [f"{counts[s]} {s} (need {minimum[s]})" for s in SPLITS if counts[s] < minimum[s]]
    if short:
        raise DatasetError(f"too few valid records for skill {skill.key!r}: {', '.join(short)} of {len(records)} "
                           f"synthetic records. " + " ".join(shortfall_causes(report, skill)))
    return kept, report


def shortfall_causes(report: dict[str, Any], skill: Skill) -> list[str]:
    """Why too few records survived, most telling first, each with the setting that would change it."""
    teacher, dropped = report["teacher"], report["dropped"]
    causes = []
    search = teacher.get("seed_search")
    if search and search["found"] < search["needed"]:
        causes.append(
            f"SKILL.md shows {teacher['skill_examples']} worked example(s) the checks accept, and the seed search "
            f"found {search['found']} of the {search['needed']} missing within its budget ({search['answers_tried']} "
            f"answers to {search['requests']} requests in {search['rounds']} rounds): show worked examples in SKILL.md "
            f"(a request and its answer), or raise synthesize.seed_search.rounds.")
    if dropped.get("failed_checks") and teacher.get("check_failures"):
        worst, count = max(teacher["check_failures"].items(), key=lambda item: item[1])
        causes.append(
            f"The teacher's answers passed the skill's checks {teacher['answers_passing_checks']} of "
            f"{teacher['answers_tried']} times ({dropped['failed_checks']} requests never passed); the check failed "
            f"most often: {worst!r} ({count} answers). Check that evals.json's checks ask what SKILL.md asks, or raise "
            f"synthesize.teacher_samples.")
    generated = sum(round_["asked"] for round_ in report.get("generator_rounds", []))
    if report["generator_dropped"] and generated:
        kept = sum(round_["kept"] for round_ in report["generator_rounds"])
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(report["generator_dropped"].items()))
        causes.append(f"The generator's texts became requests {kept} of {generated} times (dropped: {reasons}): "
                      f"show example requests in SKILL.md, or raise synthesize.generator.max_new_tokens if they are "
                      f"cut off.")
    other = {reason: n for reason, n in dropped.items() if reason != "failed_checks"}
    if other:
        causes.append("Records dropped: " + ", ".join(f"{reason} {n}" for reason, n in sorted(other.items())) +
                      " (truncated_answer: raise synthesize.teacher.max_new_tokens; over_shape_share: raise "
                      "dataset.max_shape_share).")
    causes.append("Or generate more (synthesize.*_examples), or lower dataset.min_*_records.")
    return causes
