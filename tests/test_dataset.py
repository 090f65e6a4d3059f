"""Dataset checks: every filter reason counted, the skill text dropped, too few records refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l.dataset import DatasetError, DatasetSettings, build_dataset
from s2l.schemas import validate
from s2l.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
SKILL = load_skill(ROOT / "skills" / "conventional-commits")
ROLE = {"backend": "local", "model": "m", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64}


def record(index: int, request: str, answer: str, split: str = "train", finish_reason: str = "stop") -> dict:
    return {
        "id": f"r{index}",
        "split": split,
        "request": request,
        "answer": answer,
        "finish_reason": finish_reason,
        "skill": {"key": SKILL.key, "name": SKILL.name, "sha256": SKILL.sha256},
        "generator": ROLE,
        "teacher": ROLE,
        "seed": 0,
    }


def synthetic_records() -> list[dict]:
    copied = " ".join(SKILL.body.split()[40:60])
    broken = record(9, "a request that lacks its answer", "x")
    del broken["answer"]
    return [
        record(0, "Commit message for a parser fix", "fix(parser): handle empty lines"),
        record(1, "Commit message for a new flag", "feat(cli): add --quiet"),
        record(2, "Commit message for docs", "docs: explain install", split="eval"),
        record(3, "Commit message for nothing", "   "),
        record(4, "Commit message that rambles", "fix: and then", finish_reason="length"),
        record(5, "commit message for a  PARSER fix", "fix(parser): again"),
        record(6, "Commit message for a huge change", "word " * 600),
        record(7, "Commit message copying the skill", copied),
        broken,
    ]


def test_filters_count_every_reason_and_drop_the_skill_text(tokenizer) -> None:
    settings = DatasetSettings(max_seq_len=256, min_train_records=2, min_eval_records=1)
    kept, report = build_dataset(synthetic_records(), SKILL, tokenizer, settings)
    assert [r["id"] for r in kept] == ["r0", "r1", "r2"]
    assert report["dropped"] == {
        "copies_skill_text": 1,
        "duplicate_request": 1,
        "empty_answer": 1,
        "invalid_record": 1,
        "longer_than_max_seq_len": 1,
        "truncated_answer": 1,
    }
    assert report["kept"] == {"train": 2, "eval": 1}
    assert report["input_records"] == 9
    for output in kept:
        validate(output, "dataset_record.schema.json")
        assert [m["role"] for m in output["messages"]] == ["user", "assistant"]
        assert SKILL.body[:200] not in str(output)


def test_too_few_records_is_a_clear_error(tokenizer) -> None:
    settings = DatasetSettings(max_seq_len=256, min_train_records=5, min_eval_records=1)
    with pytest.raises(DatasetError) as error:
        build_dataset(synthetic_records(), SKILL, tokenizer, settings)
    message = str(error.value)
    assert "2 train (need 5)" in message and "truncated_answer=1" in message and SKILL.key in message
