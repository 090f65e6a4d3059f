"""Worked examples in the forms skills show them (s2l.skills.examples), on small bodies written here and on
a corpus of real SKILL.md files fetched unmodified (tests/corpus), each with the extraction expected
of it written by hand before the code (tests/corpus/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2l.skills.examples import read_demonstrations
from s2l.skills.skill import SkillError, split_frontmatter

CORPUS = Path(__file__).parent / "corpus"
COMMIT_CHECKS = [{"type": "regex", "pattern": r"\A(feat|fix|docs|chore)(\([a-z]+\))?: \S"}]


def pairs(body: str, checks=()) -> list[tuple[str | None, str]]:
    found, _ = read_demonstrations(body, list(checks))
    return [(example.request, example.answer) for example in found]


def counters(body: str, checks=()) -> list[str]:
    return [example.text for example in read_demonstrations(body, list(checks))[1]]


def test_input_output_labels_bold_or_not():
    body = "## Examples\n\n**Input:** add login\n\n**Output:**\nfeat(auth): add login\n\nRequest: fix typo\nResponse: docs: fix typo\n"
    assert pairs(body) == [("add login", "feat(auth): add login"), ("fix typo", "docs: fix typo")]


def test_any_label_line_followed_by_its_answer():
    # The form a format skill written elsewhere used: "Change: ..." with the answer on the next line.
    body = ("# Commits\n\nChange: Fixed the crash on empty files.\nfix(parser): handle empty files\n\n"
            "Change: Documented the install step.\ndocs: document the install step\n")
    assert pairs(body) == [("Fixed the crash on empty files.", "fix(parser): handle empty files"),
                           ("Documented the install step.", "docs: document the install step")]


def test_a_question_line_a_blank_line_and_the_answer():
    body = "## Example\n\nQuestion: How do I undo the last commit?\n\nRun `git reset --soft HEAD~1`.\n"
    assert pairs(body) == [("How do I undo the last commit?", "Run `git reset --soft HEAD~1`.")]


def test_a_request_followed_by_a_fenced_block():
    body = ('### Example\n\nThe user says "I added a dark mode toggle":\n\n```\nfeat(ui): add dark mode toggle\n```\n')
    assert pairs(body) == [("I added a dark mode toggle", "feat(ui): add dark mode toggle")] or pairs(body) == [
        ('The user says "I added a dark mode toggle"', "feat(ui): add dark mode toggle")]


def test_example_headings_with_blocks_under_them():
    body = "## Examples\n\n### A fix\n\n```text\nfix(api): retry on 503\n```\n\n### Docs\n\n```\ndocs: add FAQ\n```\n"
    assert pairs(body) == [(None, "fix(api): retry on 503"), (None, "docs: add FAQ")]


def test_two_blocks_in_different_languages_are_request_and_answer_and_checks_can_swap_them():
    body = "## Example\n\n```\nfix(db): close the pool\n```\n\n```text\nI closed the pool on shutdown.\n```\n"
    assert pairs(body) == [("fix(db): close the pool", "I closed the pool on shutdown.")]
    assert pairs(body, COMMIT_CHECKS) == [("I closed the pool on shutdown.", "fix(db): close the pool")]


def test_a_table_with_input_and_output_columns_br_is_a_line_break():
    body = ("| Input | Output |\n|---|---|\n| added login | `feat(auth): add login` |\n"
            "| fixed crash | fix: handle crash<br><br>Closes #4 |\n")
    assert pairs(body) == [("added login", "feat(auth): add login"), ("fixed crash", "fix: handle crash\n\nCloses #4")]


def test_a_table_whose_headers_say_nothing_takes_its_code_column():
    body = "| Title | Slug |\n| --- | --- |\n| Login times out | `login-timeout` |\n| Export users as CSV | `user-csv-export` |\n"
    assert pairs(body) == [("Login times out", "login-timeout"), ("Export users as CSV", "user-csv-export")]
    kinds = "| Type | Use |\n| --- | --- |\n| New feature | `feat` |\n| Bug fix | `fix` |\n"
    assert pairs(kinds) == []  # a column of bare words names kinds: no example


def test_before_and_after():
    body = "## Example\n\n**Before:** The file is read by the loader.\n\n**After:** The loader reads the file.\n"
    assert pairs(body) == [("The file is read by the loader.", "The loader reads the file.")]


def test_counter_examples_are_recognised_and_never_shown():
    body = ("## Examples\n\n**Bad:**\n```\nFixed stuff.\n```\n\n**Good:**\n```\nfix(io): close files\n```\n\n"
            "- ❌ `update code`\n- ✅ `docs: add FAQ`\n\nDon't: `WIP`\n\n### Incorrect\n\n```\nchore: misc.\n```\n")
    assert pairs(body) == [(None, "fix(io): close files"), (None, "docs: add FAQ")]
    assert counters(body) == ["Fixed stuff.", "update code", "WIP", "chore: misc."]
    # A counter-example that passes the checks is still never an answer.
    assert "chore: misc." not in [answer for _, answer in pairs(body, COMMIT_CHECKS)]


def test_templates_and_answers_failing_the_checks_are_no_examples():
    body = "## Example\n\nOutput:\n<type>(<scope>): <description>\n\nInput: fixed it\nOutput: Fixed it.\n"
    assert pairs(body) == [("fixed it", "Fixed it.")]
    assert pairs(body, COMMIT_CHECKS) == []


def test_line_numbers_count_from_the_top_of_skill_md():
    found, _ = read_demonstrations("Intro.\n\n## Example\n\nInput: a b c\nOutput: docs: x\n", offset=4)
    assert [example.line for example in found] == [9]


# --- the corpus of real skills -------------------------------------------------------------------


def normal(text: str | None) -> str | None:
    """Compared texts ignore trailing spaces and leading/trailing blank lines, nothing else."""
    return "\n".join(line.rstrip() for line in text.strip().split("\n")) if text and text.strip() else None


def corpus() -> list[tuple[str, list, list, dict]]:
    """(key, demonstrations found, counter-examples found, expected) for every corpus skill."""
    entries = []
    for folder in sorted(path for path in CORPUS.iterdir() if (path / "expected.json").is_file()):
        text = (folder / "SKILL.md").read_text(encoding="utf-8").replace("\r\n", "\n").lstrip("\ufeff")
        try:
            _, body = split_frontmatter(text, folder / "SKILL.md")
        except SkillError:  # not a valid skill (s2l refuses it); its body is the whole file
            body = text.strip()
        offset = text[: text.index(body)].count("\n") if body else 0
        found, counter = read_demonstrations(body, [], offset)
        entries.append((folder.name, found, counter, json.loads((folder / "expected.json").read_text())))
    return entries


@pytest.fixture(scope="module")
def corpus_results():
    return corpus()


def test_the_corpus_is_real_skills_with_their_source(corpus_results):
    assert len(corpus_results) >= 25
    repositories = set()
    for key, *_ in corpus_results:
        source = json.loads((CORPUS / key / "source.json").read_text())
        assert len(source["commit"]) == 40 and source["license"] and source["path"].endswith("SKILL.md")
        repositories.add(source["repository"])
    assert len(repositories) >= 10


def test_no_counter_example_of_the_corpus_is_ever_read_as_an_answer(corpus_results):
    for key, found, _, expected in corpus_results:
        answers = {normal(example.answer) for example in found}
        for counter in expected["counter_examples"]:
            assert normal(counter["text"]) not in answers, f"{key}: counter-example at line {counter['line']} shown"


def test_corpus_extraction_against_the_hand_written_expectations(corpus_results):
    """Precision and recall of the answers found, over the whole corpus (tests/corpus/README.md has the
    per-skill figures); a found answer that matches must have the expected request and line."""
    matched = extra = missed = requests_right = 0
    for key, found, _, expected in corpus_results:
        wanted = {normal(example["answer"]): example for example in expected["demonstrations"]}
        got = {normal(example.answer): example for example in found}
        matched += len(wanted.keys() & got.keys())
        extra += len(got.keys() - wanted.keys())
        missed += len(wanted.keys() - got.keys())
        requests_right += sum(normal(got[answer].request) == normal(wanted[answer]["request"])
                              for answer in wanted.keys() & got.keys())
        if expected["styles"] == ["none"]:
            assert len(got) <= 2, f"{key} shows no example, but {len(got)} were read"
    precision, recall = matched / (matched + extra), matched / (matched + missed)
    print(f"corpus: {matched} matched, {extra} extra, {missed} missed: precision {precision:.2f}, recall {recall:.2f}; "
          f"requests right {requests_right} of {matched}")
    assert precision >= 0.8 and recall >= 0.45 and requests_right >= 0.9 * matched
