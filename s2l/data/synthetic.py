"""Synthetic data: a generator writes requests the skill applies to; a teacher answers each one with
the full SKILL.md as its system prompt and worked examples as earlier turns, and only answers that
pass the skill's checks are kept (the paper's offline phase, with rejection sampling). Both write in
the form the skill's examples share (s2l/data/form.py): a docstring opens with its quotes, a request that
is a function opens with ``def``.

What the teacher may see is the skill and what the build made for training: the worked examples in
the SKILL.md body and answers it accepted earlier for other training requests. Never an evals.json
case or a held-out request: nothing the evaluation scores reaches the teacher, the generator or the
training data, and a generated request that nearly repeats an evals.json prompt is dropped.

A skill that shows fewer worked examples than the teacher is to see gets them by search first, as
DSPy's BootstrapFewShot and STaR do (``seed_search``): rounds of new requests, several answers to
each at a rising temperature, until enough pass the skill's checks; those answers are the teacher's
examples, their requests the generator's. The examples a round shows are chosen for variety, and no
one answer shape may take more than ``max_shape_share`` of the training answers, so the data does not
collapse onto the shape of one example.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from s2l.data.form import PARAGRAPH_BREAK, Form, answer_shape, skill_form
from s2l.errors import UserError
from s2l.models.backend import Backend, Completion, Sampling
from s2l.models.chat import Message, json_answer, prompt_ids
from s2l.models.constrain import CheckConstraint
from s2l.models.judge import Judge
from s2l.skills.checks import failed_checks
from s2l.skills.examples import EXAMPLE_HEADING
from s2l.skills.overlap import CopyFilter, NearDuplicates, invented_names
from s2l.skills.skill import Skill

GENERATOR_SYSTEM = (
    "You write the inputs that developers give an AI coding assistant for this task: {description} "
    "Each input is new, short, of the same kind as the earlier ones, and holds the concrete details the "
    "assistant needs. Write only the input."
)
STRUCTURED = " Answer with a JSON object whose one key, \"request\", holds the input."
REQUEST_SCHEMA = {"type": "object", "properties": {"request": {"type": "string"}}, "required": ["request"],
                  "additionalProperties": False}
# With no example request to imitate, the generator writes what a request hands over, a change a
# developer made, and the request asks for the skill's task on it ("Write a commit message ...: <the
# change>"). Asked for a whole request, SmolLM2-135M writes about the task or off it ("Can you write a
# Convalescent Code that tells people about climate change"); asked for a change, it describes one.
TASK_MATERIAL = ("Describe one concrete change a developer made to {area}, in one sentence, with the names of the "
                 "files, functions or settings involved. Write only the sentence.")
NEXT_REQUEST = "Write one new input."
NEXT_REQUEST_ABOUT = "Write one new input, about {area}."
# Every prompt in a round shares one few-shot prefix (computed once, see PrefixCache); the short
# per-prompt area hint and sampling make the requests differ.
AREAS = (
    "a web API", "a command-line tool", "a database layer", "a test suite", "the build system",
    "authentication", "a data pipeline", "a user interface", "the documentation", "performance",
    "a mobile app", "logging", "configuration files", "a payment service", "caching", "a search feature",
    "file uploads", "error handling", "a background job queue", "internationalization",
)
MAX_ROUNDS = 6
# Each round asks for this many times the requests still missing: some come back duplicated, cut off or empty.
REQUEST_SURPLUS = 1.5
MIN_REQUEST_CHARS = 16
# A generated "request" that opens the way an assistant answers is no request.
ASSISTANT_CHATTER = re.compile(
    r"^(?:sure|certainly|of course|absolutely|great|hello|hi|hey|here(?:'s| is| are)|as an ai|i(?:'m| am) (?:ready|here|"
    r"happy|glad|an ai)|i(?:'d| would) (?:be happy|love)|what can i|how can i (?:help|assist))\b", re.IGNORECASE)
# The end of a sentence: what a prose request cut off at max_new_tokens is cut back to.
SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
SKILL_EXAMPLE = "skill-example-"  # id prefix of the SKILL.md body's own worked examples


class SynthesisError(UserError):
    """The generator wrote nothing the teacher could answer."""


@dataclass(frozen=True)
class Role:
    """One role's backend settings, as recorded in every record's provenance."""

    backend: str
    model: str
    temperature: float
    top_p: float
    max_new_tokens: int
    base_url: str | None = None  # the endpoint (openai backend)
    structured: bool = False  # requests asked for as JSON (generator)

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_new_tokens)


@dataclass(frozen=True)
class TeacherSettings:
    """How the teacher is prompted and its answers chosen (``synthesize.teacher_*`` in the config;
    defaults: config.yaml)."""

    examples: int  # worked examples shown as earlier turns
    samples: int  # answers tried per request, at most
    filter_by_checks: bool  # keep only answers that pass every skill-level check
    # An answer sharing this many consecutive words with SKILL.md repeats a worked example instead of
    # answering its own request: never acceptable (the dataset stage drops such answers too).
    copy_ngram_words: int
    # No one answer shape (s2l/data/form.py: answer_shape) may take more than this share of the training answers.
    max_shape_share: float
    # Local decoding held to the checks anchored at the answer's start (s2l/models/constrain.py).
    hold_to_checks: bool
    # An answer that uses a code name its request does not hold (s2l/skills/overlap.py: invented_names) is
    # kept only when no later try names only what the request holds, and is never shown as an example.
    prefer_grounded: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TeacherSettings:
        synthesis, dataset = config["synthesize"], config["dataset"]
        return cls(synthesis["teacher_examples"], synthesis["teacher_samples"], synthesis["filter_by_checks"],
                   dataset["copy_ngram_words"], dataset["max_shape_share"], synthesis["hold_to_checks"],
                   synthesis["prefer_grounded"])

    def grounded(self, request: str, answer: str) -> bool:
        """Whether ``answer`` uses only code names ``request`` holds; always true with prefer_grounded or
        filter_by_checks off (unfiltered, the first answer that ends its turn is kept, as documented)."""
        return not (self.prefer_grounded and self.filter_by_checks) or not invented_names(request, answer)

    def constraint(self, skill: Skill) -> CheckConstraint | None:
        """What the teacher's decoding is held to: the skill's anchored checks, when answers are filtered
        by them and holding is on."""
        return CheckConstraint.of_checks(skill.checks) if self.hold_to_checks and self.filter_by_checks else None


@dataclass(frozen=True)
class SeedSearch:
    """The seed phase (``synthesize.seed_search``), for a skill that shows fewer worked examples than
    ``TeacherSettings.examples``: each round asks for ``requests`` new requests and ``samples``
    answers to each, at the round's temperature, until enough answers pass the skill's checks or the
    rounds are spent (a budget of requests x samples x rounds answers)."""

    requests: int
    samples: int
    rounds: int
    temperatures: tuple[float, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SeedSearch:
        search = config["synthesize"]["seed_search"]
        return cls(search["requests"], search["samples"], search["rounds"], tuple(search["temperatures"]))

    @property
    def budget(self) -> int:
        return self.requests * self.samples * self.rounds


@dataclass(frozen=True)
class Answer:
    """The answer kept for one request, and what it took to get it."""

    completion: Completion
    samples: int  # answers tried
    passed: bool | None  # passes the skill's checks, or the judge's verdicts (None: nothing grades it)
    shown: tuple[str, ...]  # ids of the worked examples the teacher saw for it
    verdicts: list[bool | None] | None = None  # the judge's, per rule of the skill (a skill without checks)


def worked_examples(skill: Skill) -> list[dict[str, str]]:
    """The skill's own worked examples that pass its checks, with ids: what the teacher starts from.
    An answer the skill shows without its request is shown as the answer to the task the skill's
    description names: the teacher sees the form even where the skill shows no request."""
    task = task_phrase(skill.description)
    return [{"id": f"{SKILL_EXAMPLE}{number}", **example,
             "request": example["request"] or f"{task[0].upper()}{task[1:]}."}
            for number, example in enumerate(skill.examples) if not failed_checks(skill.checks, example["answer"])]


def teacher_conversation(skill: Skill, request: str, examples: list[dict[str, str]] = ()) -> list[Message]:
    """What the teacher sees: the full SKILL.md as its system prompt, worked examples as earlier
    turns, then the request."""
    messages = [{"role": "system", "content": skill.text}]
    for example in examples:
        messages += [{"role": "user", "content": example["request"]},
                     {"role": "assistant", "content": example["answer"]}]
    return messages + [{"role": "user", "content": request}]


def teacher_prompt_tokens(skill: Skill, tokenizer, examples: int) -> int:
    """Tokens of the teacher's prompt before the request (the skill and its own worked examples):
    what a skill costs the context window."""
    return len(prompt_ids(tokenizer, teacher_conversation(skill, "", worked_examples(skill)[:examples])))


def clean_request(text: str) -> str:
    text = text.strip().strip('"').strip()
    return re.sub(r"^(request|new request)\s*:\s*", "", text, flags=re.IGNORECASE)


def structured_request(text: str) -> str | None:
    """The request in an answer ``{"request": "..."}`` (in a Markdown code fence or not); None when
    the answer is not that JSON."""
    value = json_answer(text)
    request = value.get("request") if isinstance(value, dict) else None
    return request if isinstance(request, str) else None


# First words of a description that name no task ("Use when ...", "This skill ...").
NOT_A_TASK = {"use", "this", "the", "a", "an", "when", "for", "expert", "guide", "guidelines", "rules", "how", "skill"}


def task_phrase(description: str) -> str:
    """The task a skill's description names, as an imperative for a request: "Writes a git commit
    message ..." gives "write a git commit message ...". The description's first sentence; a
    description that does not open with a verb in the third person is taken as the topic."""
    first = re.split(r"(?<=[.!?])\s", description.strip(), maxsplit=1)[0].rstrip(".!? ")
    verb, _, rest = first.partition(" ")
    if re.fullmatch(r"[A-Z][a-z]+s", verb) and not verb.endswith("ss"):
        stem = verb[:-3] + "y" if verb.endswith("ies") else verb[:-2] if re.search(r"(?:ch|sh|x|ss|z)es$", verb) \
            else verb[:-1]
        return f"{stem.lower()} {rest}".strip()
    if re.fullmatch(r"[A-Z][a-z]+", verb) and verb.lower() not in NOT_A_TASK:  # already imperative: "Write ..."
        return f"{verb.lower()} {rest}".strip()
    return f"help with this: {first}"


def task_request(skill: Skill, material: str) -> str:
    """A request for the task the skill's description names, on ``material`` (what the user hands over)."""
    task = task_phrase(skill.description)
    return f"{task[0].upper()}{task[1:]}: {material}"


def whole_sentences(completion: Completion) -> Completion:
    """A prose request cut off at ``max_new_tokens``, cut back to its first line's last whole sentence
    and counted as ended: the 135M generator often writes a complete request and runs on past it, and
    dropping those costs a round of generation. A text without a whole sentence stays cut off."""
    line = completion.text.strip().split("\n", 1)[0]
    ends = [match.end() for match in SENTENCE_END.finditer(line)]
    if not ends:
        return completion
    return replace(completion, text=line[: ends[-1]], finish_reason="stop")


def generator_prefix(skill: Skill, structured: bool = False, examples: list[str] | None = None) -> list[Message]:
    """The requests to imitate as earlier turns (the skill's own example requests unless given): a 135M
    model stays on task far better with them than with a description alone (as JSON when requests
    are asked for as JSON). evals.json prompts are never shown."""
    system = GENERATOR_SYSTEM.format(description=skill.description) + (STRUCTURED if structured else "")
    messages = [{"role": "system", "content": system}]
    requests = [example["request"] for example in skill.worked_pairs] if examples is None else examples
    for request in requests:
        answer = json.dumps({"request": request}) if structured else request
        messages += [{"role": "user", "content": NEXT_REQUEST}, {"role": "assistant", "content": answer}]
    return messages


@dataclass(frozen=True)
class GeneratedRequests:
    """What the generator wrote: the requests kept, the texts dropped per reason, and per round the
    texts asked for, the requests kept (its yield) and the cut-off texts cut back to a whole sentence."""

    requests: list[str]
    dropped: Counter
    rounds: list[dict[str, int]]


def generate_requests(skill: Skill, backend: Backend, role: Role, count: int, seed: int,
                      examples: list[str] | None = None, avoid: list[str] = ()) -> GeneratedRequests:
    """Up to ``count`` distinct requests, none a near-duplicate of another, of an evals.json prompt, of
    ``examples`` (the requests to imitate; the skill's own by default) or of ``avoid``. Each round asks
    again for what is still missing (a malformed structured answer among it), up to ``MAX_ROUNDS``
    rounds. With no request to imitate, the generator describes a change and the request asks for the
    task the skill's description names on it (``TASK_MATERIAL``)."""
    examples = [example["request"] for example in skill.worked_pairs] if examples is None else examples
    evals = NearDuplicates([case["prompt"] for case in skill.evals])
    kept = NearDuplicates([*examples, *avoid])
    requests: list[str] = []
    dropped: Counter[str] = Counter()
    rounds: list[dict[str, int]] = []
    prefix = generator_prefix(skill, role.structured, examples)
    ask = NEXT_REQUEST_ABOUT if examples else TASK_MATERIAL
    # A JSON answer has no form to open or end with; one-paragraph requests end at the paragraph.
    form = Form() if role.structured else Form.shared_by(examples) if examples else Form("", PARAGRAPH_BREAK)
    # Only one-line prose requests may be cut back to a whole sentence: a cut-off code block is no request.
    prose = form.ending == PARAGRAPH_BREAK and not any("\n" in example.strip() for example in examples)
    for round_number in range(MAX_ROUNDS):
        missing = count - len(requests)
        if missing <= 0:
            break
        rng = random.Random(f"{seed}-{round_number}")
        conversations = [prefix + [{"role": "user", "content": ask.format(area=rng.choice(AREAS))}]
                         for _ in range(math.ceil(missing * REQUEST_SURPLUS))]
        completions = backend.complete(conversations, role.sampling, seed + 1000 * round_number,
                                       desc=f"{skill.key}: requests", answer_start=form.opening,
                                       stop=form.ending, json_schema=REQUEST_SCHEMA if role.structured else None)
        before, cut_back = len(requests), 0
        for completion in map(form.complete, completions):
            if prose and completion.finish_reason != "stop":
                completion = whole_sentences(completion)
                cut_back += completion.finish_reason == "stop"
            parsed = structured_request(completion.text) if role.structured else completion.text
            written = clean_request(parsed or "")  # the request, or what it hands over
            request = written if examples else task_request(skill, written)
            reason = ("cut_off" if completion.finish_reason != "stop" else
                      "malformed" if parsed is None else
                      "too_short" if len(written) < MIN_REQUEST_CHARS else
                      "assistant_chatter" if ASSISTANT_CHATTER.match(written) else
                      "near_evals_prompt" if evals.find(request) else
                      "near_duplicate" if kept.find(written) else None)
            if reason:
                dropped[reason] += 1
            else:
                kept.add(written)
                requests.append(request)
        rounds.append({"asked": len(conversations), "kept": len(requests) - before, "cut_back": cut_back})
    return GeneratedRequests(requests[:count], dropped, rounds)


def answer_starts(form: Form, backend: Backend, conversations: list[list[Message]], full: set[str] = frozenset(),
                  rng: random.Random | None = None) -> str | list[str]:
    """The opening of each answer: the one the skill's answers share, or, where a check allows several
    (``\\A(feat|fix|...)``), one per request, leaving out those of an answer shape that is ``full`` (has
    its share of the answers already). With ``rng``, drawn from the model's calibrated likelihoods
    (the type this request calls for, not the model's favourite; and, where the request leaves it
    open, any type it might be, so one type does not take every answer); without, the likeliest
    uncalibrated, the opening the model most readily goes on from to a passing answer (the seed
    search: there a passing answer is what counts)."""
    if not form.alternatives:
        return form.opening
    openings = tuple(opening for opening in form.alternatives if answer_shape(opening) not in full) \
        or form.alternatives
    if len(openings) == 1:
        return openings[0]
    scores = backend.opening_scores(conversations, openings, calibrated=rng is not None)
    if scores is None:
        return ""
    if rng is None:
        return [openings[row.index(max(row))] for row in scores]
    return [rng.choices(openings, weights=[math.exp(score - max(row)) for score in row])[0] for row in scores]


def choose_examples(pool: list[dict[str, Any]], count: int, rng: random.Random, opening: str = ""
                    ) -> list[dict[str, Any]]:
    """``count`` examples from ``pool``, drawn at random but one of each answer shape (past the
    ``opening`` all answers share) before any shape twice: shown three ``feat(api)!:`` commits, a
    small teacher writes nothing else."""
    order = rng.sample(pool, len(pool))
    chosen: list[dict[str, Any]] = []
    shapes: set[str] = set()
    for example in order:
        shape = answer_shape(example["answer"], opening)
        if shape not in shapes:
            chosen.append(example)
            shapes.add(shape)
    chosen += [example for example in order if example not in chosen]
    return chosen[:count]


def shape_limit(share: float, answers: int) -> int:
    """How many of ``answers`` training answers one answer shape may take (at least one)."""
    return max(1, math.floor(share * answers))


def skill_rules(skill: Skill, limit: int = 8) -> list[str]:
    """What a judge holds a teacher answer to: the rules the skill lists (its bullet points outside any
    example section), or, when it lists none, its description."""
    rules, in_examples = [], False
    for line in skill.body.split("\n"):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            in_examples = bool(EXAMPLE_HEADING.search(heading.group(1)))
        bullet = re.match(r"[-*+]\s+(.{12,})", line.strip())
        if bullet and not in_examples:
            rules.append(bullet.group(1).strip())
    return rules[:limit] or [f"The answer does what the skill describes: {skill.description}"]


class Grader:
    """Whether a teacher answer is acceptable: it ended its turn, repeats no run of the skill text, and
    (when filtering) passes every skill-level check, or, for a skill without checks, the judge's
    verdict on each of the skill's rules; ``passed`` is None when nothing can grade it."""

    def __init__(self, skill: Skill, settings: TeacherSettings, judge: Judge | None = None, seed: int = 0) -> None:
        self.skill = skill
        self.settings = settings
        self.judge = None if skill.checks else judge
        self.rules = skill_rules(skill) if self.judge else []
        self.seed = seed
        self.skill_text = CopyFilter(skill.text, settings.copy_ngram_words)
        self.failures: Counter[str] = Counter()  # per check (or judged rule), the answers that failed it

    @property
    def grades(self) -> bool:
        return self.settings.filter_by_checks and (bool(self.skill.checks) or self.judge is not None)

    def grade(self, requests: list[str], completions: list[Completion]) -> list[tuple[bool | None, list | None]]:
        """(passed, the judge's verdicts or None) per answer."""
        if self.skill.checks:
            results = []
            for completion in completions:
                failed = failed_checks(self.skill.checks, completion.text)
                self.failures.update(failed)
                results.append((completion.finish_reason == "stop" and not failed, None))
            return results
        if self.judge is None:
            return [(None, None)] * len(completions)
        ended = [index for index, completion in enumerate(completions) if completion.finish_reason == "stop"]
        verdicts = self.judge.grade([(requests[i], completions[i].text, self.rules) for i in ended], self.seed)
        results: list[tuple[bool | None, list | None]] = [(False, None)] * len(completions)
        for index, verdict in zip(ended, verdicts):
            self.failures.update(f"judge: {rule}" for rule, passed in zip(self.rules, verdict) if passed is not True)
            # An ungraded rule (a reply that was not one verdict per rule) is not a pass.
            results[index] = (all(passed is True for passed in verdict), verdict)
        return results

    def acceptable(self, answer: Answer) -> bool:
        ended = answer.completion.finish_reason == "stop"
        copied = self.skill_text.copies(answer.completion.text)
        return ended and not copied and (answer.passed is not False or not self.settings.filter_by_checks)


def answer_requests(
    skill: Skill,
    requests: list[str],
    ids: list[str],
    backend: Backend,
    role: Role,
    settings: TeacherSettings,
    seed: int,
    shown: list[dict[str, str]],
    learn: bool,
    desc: str,
    grader: Grader | None = None,
) -> list[Answer]:
    """Rejection sampling: each request gets up to ``settings.samples`` answers and keeps the first
    that the grader accepts (ends its turn, does not copy the skill text, passes every skill-level
    check; with filtering off, the first that ends its turn without copying). Each round shows the
    teacher ``settings.examples`` worked examples from ``shown``, chosen for variety; with ``learn``,
    answers accepted in a round join ``shown`` for the next (training requests only: a held-out
    answer must never teach the teacher), and no answer shape may take more than
    ``settings.max_shape_share`` of the answers: one over it is tried again."""
    grader = grader or Grader(skill, settings)
    form = skill_form(skill)
    constraint = settings.constraint(skill)
    limit = shape_limit(settings.max_shape_share, len(requests)) if learn else len(requests)
    shapes: Counter[str] = Counter()

    kept: list[Answer | None] = [None] * len(requests)
    fallback: list[Answer | None] = [None] * len(requests)  # acceptable, but naming what the request does not hold
    tries = [0] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(settings.samples):
        if not pending:
            break
        rng = random.Random(f"{seed}-{desc}-{attempt}")
        # One set of examples per round: the whole round shares one prompt prefix, computed once.
        examples = choose_examples(shown, settings.examples, rng, form.opening)
        conversations = [teacher_conversation(skill, requests[i], examples) for i in pending]
        completions = backend.complete(
            conversations,
            role.sampling,
            seed + 7919 * attempt,
            desc=f"{skill.key}: {desc}" + (f" (try {attempt + 1})" if attempt else ""),
            answer_start=answer_starts(form, backend, conversations,
                                       {shape for shape, count in shapes.items() if count >= limit}, rng),
            stop=form.ending,
            constraint=constraint,
        )
        accepted = set()
        completions = list(map(form.complete, completions))
        grades = grader.grade([requests[i] for i in pending], completions)
        for index, completion, (passed, verdicts) in zip(pending, completions, grades):
            tries[index] += 1
            answer = Answer(completion, tries[index], passed, tuple(example["id"] for example in examples), verdicts)
            shape = answer_shape(completion.text, form.opening)
            acceptable = grader.acceptable(answer) and shapes[shape] < limit
            grounded = settings.grounded(requests[index], completion.text)
            if acceptable and not grounded and attempt + 1 < settings.samples:
                fallback[index] = fallback[index] or answer  # kept if no later try is grounded
            elif acceptable:
                kept[index] = answer
                accepted.add(index)
                shapes[shape] += 1
                if learn and answer.passed and grounded:
                    shown = shown + [{"id": ids[index], "request": requests[index], "answer": completion.text}]
            elif kept[index] is None or kept[index].completion.finish_reason == "length":
                # Until an answer is accepted, keep the latest that at least ended its turn.
                kept[index] = answer
        pending = [index for index in pending if index not in accepted]
    for index in pending:
        kept[index] = fallback[index] or kept[index]
    return [replace(answer, samples=tries[i]) for i, answer in enumerate(kept)]  # type: ignore[arg-type]


def requests_to_imitate(skill: Skill, seeds: list[dict[str, Any]]) -> list[str]:
    """What the generator imitates: the requests the skill shows and those of the seeds found; none
    where the skill shows no request, since then each request is written the same way, the seeds'
    included (a change described, the task asked for on it)."""
    return [example["request"] for example in skill.worked_pairs + seeds] if skill.worked_pairs else []


def seed_search(skill: Skill, generator: tuple[Backend, Role], teacher: tuple[Backend, Role], needed: int,
                shown: list[dict[str, Any]], seed: int, settings: TeacherSettings, search: SeedSearch,
                grader: Grader) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Worked examples found by search for a skill that shows too few: each round the generator writes
    new requests (imitating those of the examples found so far), the teacher answers each
    ``search.samples`` times at the round's temperature, shown the examples found so far, and the
    first acceptable answer to a request is a seed. Stops once ``needed`` seeds are found or the
    rounds are spent. Returns the seeds (request, answer, tries, the examples shown) and what the
    search did."""
    generator_backend, generator_role = generator
    teacher_backend, teacher_role = teacher
    form = skill_form(skill)
    constraint = settings.constraint(skill)
    seeds: list[dict[str, Any]] = []
    report = {"needed": needed, "found": 0, "rounds": 0, "requests": 0, "answers_tried": 0, "budget": search.budget,
              "temperatures": list(search.temperatures), "requests_dropped": {}}
    dropped: Counter[str] = Counter()
    for round_number in range(search.rounds):
        if len(seeds) >= needed:
            break
        pool = shown + seeds
        generated = generate_requests(skill, generator_backend, generator_role, search.requests,
                                      seed + 104729 * (round_number + 1), examples=requests_to_imitate(skill, seeds),
                                      avoid=[example["request"] for example in seeds])
        dropped.update(generated.dropped)
        requests = generated.requests
        temperature = search.temperatures[round_number % len(search.temperatures)]
        examples = choose_examples(pool, settings.examples, random.Random(f"{seed}-seeds-{round_number}"),
                                   form.opening)
        conversations = [teacher_conversation(skill, request, examples) for request in requests]
        starts = answer_starts(form, teacher_backend, conversations)
        completions = teacher_backend.complete(
            [conversation for conversation in conversations for _ in range(search.samples)],
            replace(teacher_role.sampling, temperature=temperature), seed + 7919 * (round_number + 101),
            desc=f"{skill.key}: seed search (round {round_number + 1}, temperature {temperature})",
            answer_start=starts if isinstance(starts, str) else [start for start in starts
                                                                 for _ in range(search.samples)],
            stop=form.ending, constraint=constraint)
        report["rounds"] += 1
        report["requests"] += len(requests)
        report["answers_tried"] += len(completions)
        completions = list(map(form.complete, completions))
        grades = grader.grade([request for request in requests for _ in range(search.samples)], completions)
        for number, request in enumerate(requests):
            tried = zip(completions[number * search.samples:(number + 1) * search.samples],
                        grades[number * search.samples:(number + 1) * search.samples])
            for tries, (completion, (passed, verdicts)) in enumerate(tried, 1):
                answer = Answer(completion, tries, passed, tuple(example["id"] for example in examples), verdicts)
                if answer.passed and grader.acceptable(answer) and settings.grounded(request, completion.text) \
                        and request not in {seed["request"] for seed in seeds}:
                    seeds.append({"id": f"{skill.key}-seed-{len(seeds):02d}", "request": request,
                                  "answer": completion.text, "kept": answer})
                    break
    report["found"] = len(seeds)
    report["requests_dropped"] = dict(sorted(dropped.items()))
    return seeds, report


def synthesize(
    skill: Skill,
    generator: tuple[Backend, Role],
    teacher: tuple[Backend, Role],
    train_examples: int,
    eval_examples: int,
    seed: int,
    settings: TeacherSettings,
    search: SeedSearch,
    judge: Judge | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one record per request: the seeds a seed search found (training records), the rest of the
    train split, then the disjoint eval split. ``judge`` grades the answers of a skill without checks."""
    generator_backend, generator_role = generator
    teacher_backend, teacher_role = teacher
    grader = Grader(skill, settings, judge, seed)
    shown = worked_examples(skill)
    seeds: list[dict[str, Any]] = []
    search_report = None
    if len(shown) < settings.examples and grader.grades and search.rounds:
        seeds, search_report = seed_search(skill, generator, teacher, settings.examples - len(shown), shown, seed,
                                           settings, search, grader)
        seeds = seeds[:train_examples]
    asked = train_examples + eval_examples - len(seeds)
    seed_requests = [example["request"] for example in seeds]
    generated = generate_requests(skill, generator_backend, generator_role, asked, seed,
                                  examples=requests_to_imitate(skill, seeds), avoid=seed_requests)
    requests = generated.requests
    if not requests and not seeds:
        raise SynthesisError(
            f"skill {skill.key!r}: the generator wrote no usable request ({asked} asked, in {MAX_ROUNDS} rounds; "
            f"dropped: {dict(generated.dropped) or 'none'}; a request must end within synthesize.generator."
            f"max_new_tokens={generator_role.max_new_tokens} tokens, hold at least {MIN_REQUEST_CHARS} characters "
            f"and not nearly repeat another request or an evals.json prompt)")
    # If the generator fell short, both splits shrink in proportion.
    train_count = min(train_examples - len(seeds), round(len(requests) * (train_examples - len(seeds)) / asked))
    ids = [f"{skill.key}-{index:04d}" for index in range(len(requests))]
    shown = shown + [{key: example[key] for key in ("id", "request", "answer")} for example in seeds]
    answers = answer_requests(skill, requests[:train_count], ids[:train_count], teacher_backend, teacher_role,
                              settings, seed, shown, learn=True, desc="answers", grader=grader)
    shown = shown + [{"id": ids[index], "request": requests[index], "answer": answer.completion.text}
                     for index, answer in enumerate(answers) if answer.passed]
    answers += answer_requests(skill, requests[train_count:], ids[train_count:], teacher_backend, teacher_role,
                               settings, seed, shown, learn=False, desc="held-out answers", grader=grader)
    generator_record = {**asdict(generator_role), "requests_dropped": dict(sorted(generated.dropped.items())),
                        "rounds": generated.rounds}
    teacher_record = {**asdict(teacher_role), **asdict(settings), "seed_search": search_report,
                      "judge": grader.judge.label if grader.judge else None,
                      "check_failures": dict(sorted(grader.failures.items()))}
    records = [(example["id"], "train", example["request"], example["kept"], "seed_search") for example in seeds]
    records += [(ids[index], "train" if index < train_count else "eval", request, answers[index],
                 "answers" if index < train_count else "held_out") for index, request in enumerate(requests)]
    for record_id, split, request, answer, phase in records:
        yield {
            "id": record_id,
            "split": split,
            "phase": phase,
            "request": request,
            "answer": answer.completion.text,
            "finish_reason": answer.completion.finish_reason,
            "samples": answer.samples,
            "passed_checks": answer.passed,
            "shown_examples": list(answer.shown),
            "judge_verdicts": answer.verdicts,
            "skill": skill.identity,
            "generator": generator_record,
            "teacher": teacher_record,
            "seed": seed,
        }
