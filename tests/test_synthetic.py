"""Rejection sampling with the real embedded model (s2l.data.synthetic): what the teacher keeps and sees.
On the llama.cpp engine, as the default build runs it (three times faster than transformers here);
on transformers where a figure depends on its numerics, or where it ran faster there (the seed search:
43 s on transformers in the last CI, 55 s on llama.cpp in one run here)."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s2l.data.form import skill_form
from s2l.data.synthetic import (
    Grader,
    Role,
    SeedSearch,
    TeacherSettings,
    answer_requests,
    answer_starts,
    generate_requests,
    seed_search,
    skill_rules,
    teacher_conversation,
    whole_sentences,
    worked_examples,
)
from s2l.engine.config import default_config
from s2l.models.backend import Completion, Sampling
from s2l.models.endpoint import Connection, OpenAIBackend
from s2l.models.generation import LocalBackend
from s2l.models.judge import Judge
from s2l.models.request_cache import RequestCache
from s2l.skills.checks import failed_checks
from s2l.skills.overlap import invented_names, word_ngrams
from s2l.skills.skill import load_skill

ROOT = Path(__file__).resolve().parent.parent
SKILL = load_skill(ROOT / "skills" / "conventional-commits")
TEACHER_SETTINGS = TeacherSettings.from_config(default_config())
TEACHER = Role("local", "smollm2", temperature=0.7, top_p=0.95, max_new_tokens=64)
REQUESTS = [
    "Fixed a typo in the README's install section.",
    "Added a --dry-run flag to the deploy command so it prints the plan without applying it.",
    "The cache now expires entries after ten minutes instead of never; fixes issue 17.",
    "Removed the deprecated v1 login endpoint; clients must use /v2/login.",
    "Sped up the CSV export by streaming rows instead of building the whole file in memory.",
    "Upgraded the requests dependency to 2.32 to pick up a security fix.",
]
SEEDS = worked_examples(SKILL)
# The real model writing at length (15-45 s each): `make test` runs these, a plain `pytest` leaves them out.
LONG = pytest.mark.workflow


@pytest.fixture(scope="module")
def answers(llama_model):
    backend = llama_model.backend(8)
    ids = [f"train-{n}" for n in range(len(REQUESTS))]
    return answer_requests(SKILL, REQUESTS, ids, backend, TEACHER, replace(TEACHER_SETTINGS, examples=3, samples=3), 0, SEEDS,
                           learn=True, desc="answers")


def test_a_kept_answer_that_passed_really_passes_every_check(answers):
    assert len(answers) == len(REQUESTS)
    assert any(answer.passed for answer in answers)  # with worked examples the 135M teacher often complies
    for answer in answers:
        assert 1 <= answer.samples <= 3
        if answer.passed:
            assert answer.completion.finish_reason == "stop"
            assert failed_checks(SKILL.checks, answer.completion.text) == []
        else:
            assert answer.samples == 3  # the whole budget was spent before giving up


def test_an_answer_that_invents_a_code_name_is_kept_only_once_every_try_did(answers):
    # A small teacher copies names from the examples it is shown (`Raises: ValueError` on a function
    # that raises nothing); such an answer is the fallback, kept only when no try named only what the
    # request holds, and never shown to the teacher as an example.
    shown = {example for answer in answers for example in answer.shown}
    for number, (request, answer) in enumerate(zip(REQUESTS, answers)):
        if invented_names(request, answer.completion.text):
            assert answer.samples == 3
            assert f"train-{number}" not in shown


# Functions that raise nothing, for a skill whose worked example documents `Raises: FileNotFoundError`.
PLAIN_FUNCTIONS = [
    "def mean(values: list[float]) -> float:\n    return sum(values) / len(values)",
    "def greet(name: str) -> str:\n    return f\"Hello, {name}!\"",
    "def clamp(value: int, low: int, high: int) -> int:\n    return max(low, min(value, high))",
    "def is_even(number: int) -> bool:\n    return number % 2 == 0",
    "def initials(first: str, last: str) -> str:\n    return first[0] + last[0]",
    "def celsius(fahrenheit: float) -> float:\n    return (fahrenheit - 32) * 5 / 9",
]


@LONG
def test_a_teacher_copying_raises_from_its_examples_keeps_such_an_answer_only_when_every_try_did(llama_model):
    docstrings = load_skill(ROOT / "skills" / "google-docstrings")
    ids = [f"train-{n}" for n in range(len(PLAIN_FUNCTIONS))]
    settings = replace(TEACHER_SETTINGS, samples=2)
    kept = answer_requests(docstrings, PLAIN_FUNCTIONS, ids, llama_model.backend(8), replace(TEACHER, max_new_tokens=96),
                           settings, 0, worked_examples(docstrings), learn=True, desc="plain functions")
    invented = [number for number, answer in enumerate(kept)
                if invented_names(PLAIN_FUNCTIONS[number], answer.completion.text)]
    assert invented, "no kept answer names code its function lacks: this test would check nothing"
    shown = {example for answer in kept for example in answer.shown}
    for number in invented:
        assert kept[number].samples == settings.samples  # every try named something the function lacks
        assert ids[number] not in shown


def test_the_teacher_sees_only_the_skills_examples_and_other_training_answers(answers):
    allowed = {seed["id"] for seed in SEEDS} | {f"train-{n}" for n in range(len(REQUESTS))}
    for number, answer in enumerate(answers):
        assert 1 <= len(answer.shown) <= 3 and set(answer.shown) <= allowed
        assert f"train-{number}" not in answer.shown  # never its own answer


def test_the_teacher_starts_from_the_skills_own_examples_that_pass_its_checks():
    assert [seed["id"] for seed in SEEDS] == ["skill-example-0", "skill-example-1"]
    failing = replace(SKILL, examples=[{"request": "Fixed it.", "answer": "Fixed the bug."}, *SKILL.examples])
    assert [seed["id"] for seed in worked_examples(failing)] == ["skill-example-1", "skill-example-2"]


def test_the_teacher_prompt_holds_the_skill_then_examples_as_earlier_turns():
    messages = teacher_conversation(SKILL, "Fixed a bug.", SEEDS[:2])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == SKILL.text and messages[2]["content"] == SEEDS[0]["answer"]
    assert messages[-1]["content"] == "Fixed a bug."


def test_a_skill_without_checks_keeps_the_first_answer_that_ends_its_turn(llama_model):
    backend = llama_model.backend(8)
    unchecked = replace(SKILL, checks=[])
    kept = answer_requests(unchecked, REQUESTS[:3], ["a", "b", "c"], backend, TEACHER, replace(TEACHER_SETTINGS, examples=3, samples=2), 0,
                           SEEDS, learn=False, desc="unchecked")
    for answer in kept:
        assert answer.passed is None
        if answer.samples == 1:  # kept at once: it ended its turn, and nothing else is asked of it
            assert answer.completion.finish_reason == "stop"


def test_an_answer_that_repeats_the_skill_text_is_never_accepted(llama_model):
    # Asked a worked example's own request, the 135M teacher tends to repeat that example's answer.
    backend = llama_model.backend(8)
    requests = [example["request"] for example in SKILL.examples]
    settings = replace(TEACHER_SETTINGS, examples=2, samples=2, copy_ngram_words=6)
    kept = answer_requests(SKILL, requests, ["a", "b"], backend, TEACHER, settings, 0, SEEDS, learn=False, desc="copies")
    skill_runs = word_ngrams(SKILL.text, 6)
    for answer in kept:
        copies = bool(word_ngrams(answer.completion.text, 6) & skill_runs)
        if answer.samples == 1:
            assert not copies  # accepted at once, so it must not repeat the skill text
        if copies:
            assert answer.samples == 2  # a copy never ends the search


@LONG
def test_requests_and_answers_take_the_form_the_skills_examples_share(llama_model):
    # google-docstrings' examples are functions answered by docstrings: the generator writes functions
    # (it used to write prose about them) and the teacher's answers open with the docstring's quotes.
    docstrings = load_skill(ROOT / "skills" / "google-docstrings")
    backend = llama_model.backend(8)
    generator = Role("local", "smollm2", temperature=0.8, top_p=0.95, max_new_tokens=96)
    requests = generate_requests(docstrings, backend, generator, 4, seed=0).requests
    assert requests and all(request.startswith("def ") for request in requests)
    assert all("\n\n" not in request for request in requests)  # one paragraph, like the examples
    teacher = replace(TEACHER, max_new_tokens=128)  # the default budget: room for a whole docstring
    answers = answer_requests(docstrings, requests, [str(n) for n in range(len(requests))], backend, teacher,
                              replace(TEACHER_SETTINGS, examples=2, samples=1), 0, worked_examples(docstrings), learn=False,
                              desc="docstrings")
    assert any(answer.completion.text.endswith('\n"""') for answer in answers)  # some reached the closing line
    for answer in answers:
        assert answer.completion.text.startswith('"""')
        if '\n"""' in answer.completion.text:
            assert answer.completion.text.endswith('\n"""')  # cut at the closing line, nothing after it
            assert answer.completion.finish_reason == "stop"


def test_a_skill_that_shows_no_request_gets_requests_for_its_task_on_a_described_change(llama_model):
    """perkzen-branch-naming (benchmarks/foreign) shows no request: each request asks for the task its
    description names, on a change the generator described; asked for whole requests instead, the
    generator wrote off-task ones ("Can you provide a personalized guide to our best-selling mobile app?")."""
    branches = load_skill(ROOT / "benchmarks" / "foreign" / "perkzen-branch-naming")
    assert not branches.worked_pairs
    backend = llama_model.backend(8)
    generator = Role("local", "smollm2", temperature=0.8, top_p=0.95, max_new_tokens=96)
    generated = generate_requests(branches, backend, generator, 4, seed=0)
    task = "Choose the type, slug, and preview flag for a ticket's branch: "
    assert len(generated.requests) == 4
    changes = [request.removeprefix(task) for request in generated.requests]
    assert all(request.startswith(task) for request in generated.requests)
    assert all(len(change) >= 16 and not change.startswith(("Can you", task)) for change in changes)
    assert len(set(changes)) == 4


@pytest.mark.parametrize(("text", "kept"), [
    ("Added a --dry-run flag to deploy. It prints the plan and", "Added a --dry-run flag to deploy."),
    ('Renamed "max_age" to "ttl" in cache.py. Then the', 'Renamed "max_age" to "ttl" in cache.py.'),
    ("Fixed the login bug (see auth.py). Also\nWrite one new input", "Fixed the login bug (see auth.py)."),
    ('Logged "retry failed." in worker.py. The', 'Logged "retry failed." in worker.py.'),
    ("Bumped version to 2.3.1 in setup.py and", None),  # the dots of a version end no sentence
    ("def parse(path):\n    return open(path).", None),  # its first line holds no whole sentence
])
def test_a_cut_off_request_is_cut_back_to_its_last_whole_sentence(text, kept):
    cut_back = whole_sentences(Completion(text, "length", 100, 40))
    assert (cut_back.text, cut_back.finish_reason) == ((kept, "stop") if kept else (text, "length"))


def test_only_prose_requests_run_past_the_token_budget_are_cut_back(llama_model):
    # keep-a-changelog's requests are one-line prose: one cut off at 40 tokens keeps its whole sentences.
    # google-docstrings' are functions: half a function is dropped as cut off, never cut back.
    backend = llama_model.backend(8)
    generator = Role("local", "smollm2", temperature=0.8, top_p=0.95, max_new_tokens=40)
    changelog = generate_requests(load_skill(ROOT / "skills" / "keep-a-changelog"), backend, generator, 6, seed=0)
    assert sum(round["cut_back"] for round in changelog.rounds) > 0
    short = replace(generator, max_new_tokens=24)
    docstrings = generate_requests(load_skill(ROOT / "skills" / "google-docstrings"), backend, short, 4, seed=0)
    assert docstrings.dropped["cut_off"] > 0
    assert sum(round["cut_back"] for round in docstrings.rounds) == 0


@LONG
def test_a_calibrated_opening_is_the_one_the_request_calls_for_not_the_models_favourite(model, tokenizer):
    # After conventional-commits' two examples the model puts most weight on `feat` whatever the change;
    # calibrated against a request that says nothing, a rename opens as `refactor` and new tests as `test`.
    backend = LocalBackend(model, tokenizer, "smollm2", batch_size=8)
    requests = ["Renamed variables in utils.py for clarity, no behaviour change.",
                "Write a commit message for this diff:\n--- /dev/null\n+++ b/tests/test_slugify.py\n"
                "@@ -0,0 +1,3 @@\n+def test_slugify():\n+    assert slugify('A b') == 'a-b'"]
    conversations = [teacher_conversation(SKILL, request, SEEDS) for request in requests]
    openings = skill_form(SKILL).alternatives

    def likeliest(scores: list[list[float]]) -> list[str]:
        return [openings[row.index(max(row))] for row in scores]

    assert likeliest(backend.opening_scores(conversations, openings)) == ["feat", "feat"]
    assert likeliest(backend.opening_scores(conversations, openings, calibrated=True)) == ["refactor", "test"]
    # A request that leaves the type open: the seed search's choice is the same every time; the
    # teacher's, drawn from the calibrated likelihoods, is not always the same.
    vague = [teacher_conversation(SKILL, "The data may have changed.", SEEDS)] * 8
    form = skill_form(SKILL)
    assert set(answer_starts(form, backend, vague)) == {"feat"}
    assert len(set(answer_starts(form, backend, vague, rng=random.Random(0)))) > 1


@LONG
def test_a_seed_search_finds_passing_seeds_for_a_skill_that_shows_no_example(model, tokenizer):
    """Without a worked example the 135M teacher passed 0 of 128 conventional-commits answers; held to
    the openings the header check allows (the type, chosen by likelihood), the search finds seeds."""
    bare = replace(SKILL, examples=[])
    assert skill_form(bare).alternatives == ("build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor",
                                             "revert", "style", "test")
    backend = LocalBackend(model, tokenizer, "smollm2", batch_size=32)
    generator = Role("local", "smollm2", temperature=0.8, top_p=0.95, max_new_tokens=64)
    settings = replace(TEACHER_SETTINGS, examples=3, samples=2)
    search = replace(SeedSearch.from_config(default_config()), requests=8, samples=4, rounds=2)
    grader = Grader(bare, settings)
    seeds, report = seed_search(bare, (backend, generator), (backend, TEACHER), 3, [], 0, settings, search, grader)
    assert seeds and report["found"] == len(seeds)
    assert report["answers_tried"] <= search.budget and report["rounds"] <= 2
    assert report["answers_tried"] == report["requests"] * search.samples
    for number, seed in enumerate(seeds):
        assert seed["id"] == f"{bare.key}-seed-{number:02d}"
        assert failed_checks(SKILL.checks, seed["answer"]) == []
        assert seed["answer"].split("(")[0].split(":")[0].rstrip("!") in skill_form(bare).alternatives
        assert 1 <= seed["kept"].samples <= search.samples
    assert len({seed["request"] for seed in seeds}) == len(seeds)
    assert sum(grader.failures.values()) > 0  # what failed is counted per check, for the dataset report


class ScriptedJudge(ThreadingHTTPServer):
    """An OpenAI-compatible chat endpoint on loopback that judges by a rule, not a model: an answer
    passes every rule when it has an even number of characters. A judge's failure to grade cannot be
    caused on demand with a real model, and this makes every verdict known in advance."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server interface)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                answer = user.split("\nAnswer:\n", 1)[1].split("\n\nExpectations:\n", 1)[0]
                rules = user.split("\n\nExpectations:\n", 1)[1].count("\n") + 1
                verdict = len(answer) % 2 == 0
                content = json.dumps({"verdicts": [{"expectation": n, "passed": verdict, "evidence": "length"}
                                                   for n in range(1, rules + 1)]})
                reply = json.dumps({"id": "j", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": content}}],
                                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@LONG
def test_the_judge_filters_the_answers_of_a_skill_without_checks(llama_model, tmp_path):
    server = ScriptedJudge()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", "scripted-judge",
                                 Connection(max_retries=0), RequestCache(tmp_path))
        judge = Judge(endpoint, Sampling(0.0, 1.0, 64), "openai")
        unchecked = replace(SKILL, checks=[])
        backend = llama_model.backend(8)
        grader = Grader(unchecked, replace(TEACHER_SETTINGS, examples=3, samples=3), judge)
        kept = answer_requests(unchecked, REQUESTS[:4], list("abcd"), backend, TEACHER, replace(TEACHER_SETTINGS, examples=3, samples=3), 0,
                               SEEDS, learn=False, desc="judged", grader=grader)
    finally:
        server.shutdown()
    assert grader.rules == skill_rules(unchecked) and len(grader.rules) == 8  # the skill's own rules
    assert endpoint.usage.sent > 0
    for answer in kept:
        ended = answer.completion.finish_reason == "stop"
        assert answer.passed == (ended and len(answer.completion.text) % 2 == 0)
        if ended:
            assert answer.verdicts == [answer.passed] * len(grader.rules)
        if answer.passed:
            assert answer.samples >= 1
        else:
            assert answer.samples == 3  # a judged failure is tried again, to the budget
