"""Dataset checks: every filter reason counted, the skill text dropped, too few records refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from s2l.data.dataset import DatasetError, DatasetSettings, build_dataset
from s2l.engine.config import default_config, section_settings
from s2l.schemas import validate
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
SKILL = load_skill(ROOT / "skills" / "conventional-commits")
DATASET_SETTINGS = section_settings(DatasetSettings, default_config()["dataset"])
ROLE = {"backend": "local", "model": "m", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64}
TEACHER = {**ROLE, "examples": 3, "samples": 4, "filter_by_checks": True}


def record(index: int, request: str, answer: str, split: str = "train", finish_reason: str = "stop",
           passed: bool | None = True, samples: int = 1, filtered: bool = True) -> dict:
    return {
        "id": f"r{index}",
        "split": split,
        "request": request,
        "answer": answer,
        "finish_reason": finish_reason,
        "samples": samples,
        "passed_checks": passed,
        "shown_examples": ["skill-example-0"],
        "skill": {"key": SKILL.key, "name": SKILL.name, "sha256": SKILL.sha256},
        "generator": ROLE,
        "teacher": {**TEACHER, "filter_by_checks": filtered},
        "seed": 0,
    }


def synthetic_records() -> list[dict]:
    copied = " ".join(SKILL.body.split()[40:60])
    broken = record(10, "a request that lacks its answer", "x")
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
        # A worked example's 5-word header, copied as the answer to an unrelated request: no 12-word run.
        record(8, "Commit message for a new logging option", "feat(api)!: paginate the users endpoint"),
        broken,
    ]


def test_filters_count_every_reason_and_drop_the_skill_text(tokenizer) -> None:
    settings = replace(DATASET_SETTINGS, max_seq_len=256, min_train_records=2, min_eval_records=1)
    kept, report = build_dataset(synthetic_records(), SKILL, tokenizer, settings)
    assert [r["id"] for r in kept] == ["r0", "r1", "r2"]
    assert report["dropped"] == {
        "copies_skill_text": 2,
        "duplicate_request": 1,
        "empty_answer": 1,
        "invalid_record": 1,
        "longer_than_max_seq_len": 1,
        "truncated_answer": 1,
    }
    assert report["kept"] == {"train": 2, "eval": 1}
    assert report["input_records"] == 10
    # Each answer was shown the one example there was, though synthesize.teacher_examples asks for 3.
    assert report["teacher"]["examples_shown"] == 1
    for output in kept:
        validate(output, "dataset_record.schema.json")
        assert [m["role"] for m in output["messages"]] == ["user", "assistant"]
        assert SKILL.body[:200] not in str(output)


def test_too_few_records_is_a_clear_error(tokenizer) -> None:
    settings = replace(DATASET_SETTINGS, max_seq_len=256, min_train_records=5, min_eval_records=1)
    with pytest.raises(DatasetError) as error:
        build_dataset(synthetic_records(), SKILL, tokenizer, settings)
    message = str(error.value)
    assert "2 train (need 5)" in message and "truncated_answer 1" in message and SKILL.key in message


def checked_records(filtered: bool) -> list[dict]:
    evals_prompt = SKILL.evals[0]["prompt"]
    return [
        record(0, "Commit message for a parser fix", "fix(parser): handle empty lines", samples=2, filtered=filtered),
        record(1, "Commit message for a new flag", "Sure! Here is your message: added a flag", passed=False,
               samples=4, filtered=filtered),
        record(2, "Commit message for docs", "docs: explain install", split="eval", filtered=filtered),
        # An evals.json prompt, lightly reworded: the evaluation scores it, so training never sees it.
        record(3, evals_prompt.replace("Write a commit message:", "Please write me a commit message:"),
               "fix(auth): handle empty email", filtered=filtered),
    ]


def test_answers_failing_the_checks_are_dropped_and_counted(tokenizer) -> None:
    settings = replace(DATASET_SETTINGS, max_seq_len=256, min_train_records=1, min_eval_records=1)
    kept, report = build_dataset(checked_records(filtered=True), SKILL, tokenizer, settings)
    assert [r["id"] for r in kept] == ["r0", "r2"]
    assert report["dropped"] == {"failed_checks": 1, "near_evals_prompt": 1}
    teacher = report["teacher"]
    assert teacher["filter_by_checks"] is True and teacher["samples_per_request"] == 4
    assert (teacher["answers_tried"], teacher["answers_passing_checks"]) == (8, 3)
    assert teacher["raw_pass_rate"] == 3 / 8 and teacher["requests_without_passing_answer"] == 1


def test_with_filtering_off_a_failing_answer_is_kept_and_the_report_says_so(tokenizer) -> None:
    settings = replace(DATASET_SETTINGS, max_seq_len=256, min_train_records=1, min_eval_records=1)
    kept, report = build_dataset(checked_records(filtered=False), SKILL, tokenizer, settings)
    assert [r["id"] for r in kept] == ["r0", "r1", "r2"]
    assert report["dropped"] == {"near_evals_prompt": 1}
    assert report["teacher"]["filter_by_checks"] is False


def test_a_skill_without_checks_filters_nothing_and_says_so(tokenizer) -> None:
    unchecked = replace(SKILL, checks=[])
    records = [record(0, "Commit message for a parser fix", "whatever the teacher said", passed=None),
               record(1, "Commit message for docs", "docs: explain install", split="eval", passed=None)]
    kept, report = build_dataset(records, unchecked, tokenizer, replace(DATASET_SETTINGS, min_train_records=1, min_eval_records=1))
    assert len(kept) == 2 and report["dropped"] == {}
    assert report["teacher"]["filter_by_checks"] is False and report["teacher"]["raw_pass_rate"] is None
    assert "no machine checks" in report["teacher"]["note"]


def commit(index: int, kind: str, split: str = "train") -> dict:
    return record(index, f"Commit message for change number {index} of a {kind} sort", f"{kind}(core): change {index}",
                  split=split)


def test_no_answer_shape_takes_more_than_its_share_and_the_report_says_how_varied_they_are(tokenizer) -> None:
    # Six feat, two fix, one docs, one ci: at most half of the kept answers may be feat.
    kinds = ["feat"] * 6 + ["fix", "fix", "docs", "ci"]
    records = [commit(n, kind) for n, kind in enumerate(kinds)] + [commit(20, "feat", split="eval")]
    bounded = replace(DATASET_SETTINGS, min_train_records=1, min_eval_records=1, max_shape_share=0.5)
    kept, report = build_dataset(records, SKILL, tokenizer, bounded)
    train = [r["messages"][1]["content"].split("(")[0] for r in kept if r["split"] == "train"]
    assert train.count("feat") == 4 and len(train) == 8  # 4 of 8: no more than half
    assert [r["id"] for r in kept if r["split"] == "train"][:4] == ["r0", "r1", "r2", "r3"]  # the first ones stay
    assert report["dropped"] == {"over_shape_share": 2}
    assert any(r["split"] == "eval" for r in kept)  # held-out answers are not bounded
    assert report["diversity"]["shapes"] == {"feat": 4, "fix": 2, "docs": 1, "ci": 1}
    assert report["diversity"]["largest_share"] == 0.5 and report["diversity"]["distinct"] == 4


def test_answers_that_all_open_the_same_way_are_not_capped(tokenizer) -> None:
    records = [commit(n, "feat") for n in range(4)] + [commit(9, "fix", split="eval")]
    kept, report = build_dataset(records, SKILL, tokenizer, replace(DATASET_SETTINGS, min_train_records=1, min_eval_records=1))
    assert len(kept) == 5 and report["diversity"]["normalized_entropy"] == 0.0


def test_too_few_records_names_the_check_the_teacher_never_passed_and_the_seed_search(tokenizer) -> None:
    failing = {**TEACHER, "check_failures": {"The first line is a header.": 11, "No period.": 2},
               "seed_search": {"needed": 3, "found": 0, "rounds": 4, "requests": 32, "answers_tried": 128,
                               "budget": 128, "temperatures": [0.7], "requests_dropped": {}}}
    records = [{**record(n, f"Commit message for change {n}", "Added things.", passed=False, samples=4),
                "teacher": failing} for n in range(3)]
    records[0]["generator"] = {**ROLE, "requests_dropped": {"assistant_chatter": 9}, "rounds": [{"asked": 12, "kept": 3}]}
    with pytest.raises(DatasetError) as error:
        build_dataset(records, replace(SKILL, examples=[]), tokenizer, replace(DATASET_SETTINGS, min_train_records=2))
    message = str(error.value)
    assert "0 train (need 2)" in message
    assert "shows 0 worked example(s)" in message and "found 0 of the 3 missing" in message  # the seed search
    assert "passed the skill's checks 0 of 12 times" in message and "'The first line is a header.' (11" in message
    assert "became requests 3 of 12 times (dropped: assistant_chatter 9)" in message  # the generator's yield


def test_the_shape_bound_never_leaves_fewer_than_the_minimum_and_says_it_was_not_met(tokenizer) -> None:
    kinds = ["feat"] * 8 + ["fix"]  # within the bound: 1 feat + 1 fix; the minimum asks for 5
    records = [commit(n, kind) for n, kind in enumerate(kinds)] + [commit(20, "fix", split="eval")]
    kept, report = build_dataset(records, SKILL, tokenizer, replace(DATASET_SETTINGS, min_train_records=5, min_eval_records=1,
                                                                            max_shape_share=0.5))
    assert [r["id"] for r in kept if r["split"] == "train"] == ["r0", "r1", "r2", "r3", "r8"]
    assert report["dropped"] == {"over_shape_share": 4}
    assert report["diversity"]["bound_met"] is False and report["diversity"]["largest_share"] == 0.8
