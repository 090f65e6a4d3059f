"""The form a skill's examples share (s2l.data.form): the opening written for the model, the ending where
an answer is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l.data.form import PARAGRAPH_BREAK, Form, anchored_openings
from s2l.models.backend import Completion
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
DOCSTRINGS = ['"""Return the area.\n\nArgs:\n    w (float): Width.\n"""', '"""Load a file.\n\nReturns:\n    dict: Data.\n"""']
FUNCTIONS = ["def area(width: float) -> float:\n    return width * 2", "def load(path: str) -> dict:\n    return {}"]


def completion(text: str, finish_reason: str = "length") -> Completion:
    return Completion(text, finish_reason, prompt_tokens=10, completion_tokens=20)


def test_docstrings_open_with_quotes_and_end_on_the_closing_line():
    assert Form.shared_by(DOCSTRINGS) == Form('"""', '\n"""')


def test_an_opening_never_ends_inside_a_word_nor_with_a_space():
    assert Form.shared_by(FUNCTIONS).opening == "def"  # not "def " (the tokenizer writes " area" as one piece)
    assert Form.shared_by(["fix(parser): a\n\nbody", "feat(api)!: b\n\nbody"]).opening == ""  # not "f"
    assert Form.shared_by(["## [1.4.0] - x\n\n- a", "## [2.0.0] - y\n\n- b"]).opening == "## ["


def test_one_paragraph_examples_end_at_a_blank_line_and_a_shared_final_period_is_no_ending():
    assert Form.shared_by(FUNCTIONS).ending == PARAGRAPH_BREAK
    assert Form.shared_by(["Fixed a crash.", "Added a flag."]).ending == PARAGRAPH_BREAK
    assert Form.shared_by(["Fixed a crash.\n\nCloses #1.", "Added a flag.\n\nSee #2."]).ending == ""


def test_one_example_shows_no_shared_form():
    assert Form.shared_by(DOCSTRINGS[:1]) == Form()


def test_an_answer_is_cut_at_its_first_ending_and_counts_as_finished():
    form = Form('"""', '\n"""')
    cut = form.complete(completion('"""Return x.\n\nArgs:\n    a (int): A.\n"""\n\ndef f(a):\n    pass'))
    assert cut.text == '"""Return x.\n\nArgs:\n    a (int): A.\n"""' and cut.finish_reason == "stop"
    unfinished = completion('"""Return x.\n\nArgs:\n    a (int): A.')
    assert form.complete(unfinished) == unfinished  # never reached the closing line: still cut off
    request = Form("def", PARAGRAPH_BREAK).complete(completion("def f():\n    return 1\n\nprint(f())"))
    assert request.text == "def f():\n    return 1" and request.finish_reason == "stop"


def test_the_shipped_skills_forms():
    def forms(key: str) -> tuple[Form, Form]:
        skill = load_skill(ROOT / "skills" / key)
        return (Form.shared_by([e["request"] for e in skill.examples]),
                Form.shared_by([e["answer"] for e in skill.examples]))

    assert forms("google-docstrings") == (Form("def", PARAGRAPH_BREAK), Form('"""', '\n"""'))
    assert forms("conventional-commits") == (Form("", PARAGRAPH_BREAK), Form("", ""))
    assert forms("keep-a-changelog") == (Form("", PARAGRAPH_BREAK), Form("## [", ""))


@pytest.mark.parametrize(("pattern", "openings"), [
    (r"\A## \[", ("## [",)),
    (r'\A"""', ('"""',)),
    (r"\AScenario: [^\n]+", ("Scenario:",)),
    (r"\A(feat|fix|docs)(\([a-z]+\))?!?: \S", ("docs", "feat", "fix")),  # a type, then an optional scope
    (r"\A(?=[^\n]{1,59}(\n|\Z))(build|chore)(\()", ("build(", "chore(")),  # a lookahead consumes nothing
    (r"\A(fix|feat)(\([A-Z]+-\d+\): [a-z]|/[A-Z]+-\d+_)", ("feat(", "feat/", "fix(", "fix/")),
    (r"\AAs an? \w", ("As",)),  # "a" may go on to "an": cut back to whole words
    (r"\Afeat\w*", ()),  # "feat" may go on with letters: nothing certain
    (r"^Scenario:", ()),  # ^ is any line under MULTILINE, not the answer's start
])
def test_the_openings_an_anchored_check_allows(pattern: str, openings: tuple[str, ...]) -> None:
    assert anchored_openings({"type": "regex", "pattern": pattern}) == openings


def test_a_skill_without_shared_examples_opens_as_its_checks_demand() -> None:
    checks = [{"type": "regex", "pattern": r"\A(feat|fix)(\(\w+\))?: "}, {"type": "not_regex", "pattern": r"\.$"}]
    assert Form.of_skill([], checks) == Form(alternatives=("feat", "fix"))
    single = [*checks, {"type": "regex", "pattern": r"\Afix: "}]
    assert Form.of_skill([], single).opening == "fix:"
    # Examples that share an opening decide before any check.
    assert Form.of_skill(["fix: a", "fix: b"], checks).opening == "fix:"
