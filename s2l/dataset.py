"""Dataset checks: validate synthetic records, filter them with a count per reason, and write
training records that keep the request and the teacher's answer but drop the skill text.

The report also says what the teacher's rejection sampling did: the answers it tried, how many
passed the skill's checks (the raw pass rate), and how many requests found no passing answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from s2l.chat import supervised_ids
from s2l.errors import UserError
from s2l.overlap import NearDuplicates, normalize, repeats_a_run, word_ngrams
from s2l.schemas import SchemaError, validate
from s2l.skill import Skill

SYNTHETIC_SCHEMA = "synthetic_record.schema.json"
DATASET_SCHEMA = "dataset_record.schema.json"
SPLITS = ("train", "eval")


def record_features():
    """The ``datasets`` features of a dataset record (schemas/dataset_record.schema.json), so that
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
    max_seq_len: int = 512
    min_train_records: int = 16
    min_eval_records: int = 4
    copy_ngram_words: int = 12


def rejection_reason(
    record: dict[str, Any],
    seen_requests: set[str],
    skill_ngrams: set[tuple[str, ...]],
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
        return "failed_checks"
    if evals.find(record["request"]):
        return "near_evals_prompt"
    request_key = normalize(record["request"])
    if request_key in seen_requests:
        return "duplicate_request"
    seen_requests.add(request_key)
    if token_count(record) > settings.max_seq_len:
        return "longer_than_max_seq_len"
    if repeats_a_run(record["answer"], skill_ngrams, settings.copy_ngram_words):
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


def teacher_summary(records: list[dict[str, Any]], skill: Skill) -> dict[str, Any]:
    """What rejection sampling did: budget, answers tried, raw pass rate, requests with no passing answer."""
    teacher = records[0]["teacher"] if records else {}
    tried = sum(record.get("samples", 1) for record in records)
    passed = sum(record.get("passed_checks") is True for record in records)
    summary = {
        "skill_checks": len(skill.checks),
        "filter_by_checks": bool(teacher.get("filter_by_checks")) and bool(skill.checks),
        "samples_per_request": teacher.get("samples"),
        "worked_examples": teacher.get("examples"),
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

    skill_ngrams = word_ngrams(skill.text, settings.copy_ngram_words)
    evals = NearDuplicates([case["prompt"] for case in skill.evals])
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    total = 0
    records = list(records)
    for record in records:
        total += 1
        reason = rejection_reason(record, seen, skill_ngrams, evals, settings, token_count)
        if reason:
            dropped[reason] += 1
            continue
        output = training_record(record)
        validate(output, DATASET_SCHEMA)
        kept.append(output)

    counts = {split: sum(r["split"] == split for r in kept) for split in SPLITS}
    report = {
        "skill": skill.identity,
        "input_records": total,
        "kept": counts,
        "dropped": dict(sorted(dropped.items())),
        # Generated texts that never became a request (malformed JSON, cut off, near an evals.json prompt, ...).
        "generator_dropped": records[0]["generator"].get("requests_dropped", {}) if records else {},
        "teacher": teacher_summary(records, skill),
        "warnings": skill.warnings,
        "settings": settings.__dict__,
    }
    minimum = {"train": settings.min_train_records, "eval": settings.min_eval_records}
    short = [f"{counts[s]} {s} (need {minimum[s]})" for s in SPLITS if counts[s] < minimum[s]]
    if short:
        reasons = ", ".join(f"{reason}={n}" for reason, n in report["dropped"].items()) or "none"
        raise DatasetError(
            f"too few valid records for skill {skill.key!r}: {', '.join(short)} of {total} "
            f"synthetic records; dropped: {reasons}. Generate more examples (generation.*_examples), "
            f"raise generation.teacher.max_new_tokens, or lower dataset.min_*_records."
        )
    return kept, report
