"""Worked examples in a SKILL.md body, read in the forms skills show them.

Skills demonstrate their output in many ways: ``Input:``/``Output:`` labels, a ``Change: ...`` line
with the answer on the next line, a question, a blank line and the answer, a request followed by a
fenced block, ``### Example`` headings with blocks under them, tables with input and output columns,
Before/After, and bad/good pairs. This module reads them from the Markdown structure (markdown-it-py
gives the blocks and their lines) as ``Demonstration``s, and sets apart what the skill marks as
wrong as ``CounterExample``s, which are never shown as answers.

Where the skill has machine checks they have the last word: any fenced block is then a candidate,
wherever it stands; a candidate answer that fails them is no demonstration, and in a pair whose
answer fails while its request passes, the two swap places.
Nothing here reads evals.json cases: only the skill-level checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt

from s2l.skills.checks import failed_checks

# Label words, by what the text after them is. Counter-examples are recognised first: "Not good"
# is a counter-example, not an answer.
COUNTER_WORDS = ("bad", "wrong", "incorrect", "avoid", "don't", "dont", "do not", "never", "worse", "not ",
                 "invalid", "anti-pattern", "poor", "✗", "❌", "👎", "✘", "🚫", "錯誤", "错误", "不正確", "不正确", "不要",
                 "避免", "禁止", "反例")
ANSWER_WORDS = ("output", "response", "answer", "assistant", "result", "after", "good", "correct", "better",
                "right", "fixed", "improved", "expected", "rewritten", "becomes", "generated", "✓", "✅", "👍", "✔",
                "valid", "do", "yes", "正確", "正确", "輸出", "输出", "推薦", "推荐")
REQUEST_WORDS = ("input", "request", "user", "prompt", "question", "query", "task", "before", "original",
                 "given", "human", "from", "輸入", "输入", "請求", "请求", "問題", "问题")
# "Examples: `a`, `b`": a label of its own; each inline code span after it is one answer.
EXAMPLE_WORDS = ("example", "examples", "e.g", "eg", "for example", "for instance", "sample", "samples", "範例", "例子",
                 "示例", "例", "例如")
MAX_LABEL_WORDS = 3  # "Commit message", "Example user request"; longer is a sentence with a colon
EXAMPLE_HEADING = re.compile(r"example|sample|demo|illustrat|walkthrough|in practice|showcase|\be\.g\.|示例|範例|例子|用例",
                             re.I)
# A label at the start of a line: "Input:", "**Output:**", "- ❌ Bad:", "> User:", "1. Good:".
_LABEL = re.compile(
    r"^[ \t]*(?:>[ \t]*)*(?:(?:[-*+]|\d+[.)])[ \t]+)?(?P<mark>[✅✓✔👍❌✗✘👎🚫][ \t]*)?(?:\*\*|__|\*|_)?"
    r"(?P<label>[^\W\d_][\w '’/()-]{0,38}?)[ \t]*(?:\*\*|__|\*|_)?(?:[ \t]*[（(][^）)\n]{0,60}[）)])?[ \t]*[:：]"
    r"[ \t]*(?:\*\*|__|\*|_)?[ \t]*(?P<rest>.*)$")
# A line that is only a mark, or a mark before inline text: "❌ `Fixed stuff.`", "✅ fix: stuff".
_MARK = re.compile(r"^[ \t]*(?:(?:[-*+]|\d+[.)])[ \t]+)?(?P<mark>[✅✓✔👍❌✗✘👎🚫])[ \t]*(?P<rest>.*)$")
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+")
_INLINE_CODE = re.compile(r"^`+([^`].*?)`+$")
# Placeholders mark a template, not an example: <type>, [Feature name], {{name}}, {scope}.
_PLACEHOLDER = re.compile(r"<[a-z][a-z0-9 _-]*>|\[[A-Z][A-Za-z0-9 _/-]*\](?!\()|\{\{[^}]+\}\}|\{[a-z][a-z_ -]*\}")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.I)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_QUOTED = re.compile(r"`[^`]+`|\"[^\"]+\"|“[^”]+”")
_LIST_LABEL = re.compile(r"[^\s:]{1,40}: \S")
_LIST_PATH = re.compile(r"[\w.-]+/[\w./-]+")


@dataclass(frozen=True)
class Demonstration:
    """One worked example: the answer the skill shows, and the request it answers (None when the skill
    shows only the output). ``line`` is 1-based in SKILL.md; ``style`` says how it was shown."""

    answer: str
    request: str | None
    line: int
    style: str

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "answer": self.answer, "line": self.line, "style": self.style}


@dataclass(frozen=True)
class CounterExample:
    """Output the skill marks as wrong (Bad, Don't, Incorrect, ✗): never shown as an answer."""

    text: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "line": self.line}


def label_kind(label: str) -> str | None:
    """"counter", "answer", "request" or "example" for a label's words; None for any other label (and
    for a label of more than a few words: that is a sentence with a colon)."""
    words = label.lower().strip()
    if len(words.split()) > MAX_LABEL_WORDS:
        return None
    if words.strip(" .") in EXAMPLE_WORDS:
        return "example"
    padded = f" {words} "
    for kind, vocabulary in (("counter", COUNTER_WORDS), ("answer", ANSWER_WORDS), ("request", REQUEST_WORDS)):
        for word in vocabulary:
            if word.isascii() and (word.isalpha() or " " in word or "'" in word or "-" in word):
                if re.search(rf"(?<![\w']){re.escape(word.strip())}(?![\w'])", padded) and (word != "not " or
                                                                                          words.startswith("not")):
                    return kind
            elif word in words:
                return kind
    return None


@dataclass
class _Block:
    """A Markdown block with its source lines: a paragraph, a fence, a table row set, a heading."""

    kind: str  # "heading" | "paragraph" | "fence" | "table" | "rule"
    line: int  # 1-based, in SKILL.md
    text: str  # paragraphs and fences: the raw text; headings: the title
    level: int = 0  # heading level
    rows: list[list[str]] | None = None  # table: header row first
    info: str = ""  # fence: its info string (the language)
    section: tuple[str, ...] = ()  # titles of the headings it sits under


def _blocks(body: str, offset: int) -> list[_Block]:
    """The body's blocks in order, each with its line in SKILL.md (``offset`` lines precede the body)."""
    lines = body.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    blocks: list[_Block] = []
    section: list[tuple[int, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            level, title = int(token.tag[1]), tokens[index + 1].content.strip()
            section = [(lvl, name) for lvl, name in section if lvl < level] + [(level, title)]
            blocks.append(_Block("heading", token.map[0] + 1 + offset, title, level,
                                 section=tuple(name for _, name in section[:-1])))
        elif token.type == "paragraph_open":
            # A line that opens with a request, answer or counter label starts a block of its own:
            # "**Input:** ...\n**Output:** ..." is two.
            start, end = token.map
            cuts = [start] + [n for n in range(start + 1, end) if _opens_labelled(lines[n])] + [end]
            for first, last in zip(cuts, cuts[1:]):
                blocks.append(_Block("paragraph", first + 1 + offset, "\n".join(lines[first:last]).strip("\n"),
                                     section=tuple(name for _, name in section)))
        elif token.type in ("fence", "code_block"):
            blocks.append(_Block("fence", token.map[0] + 1 + offset, token.content.rstrip("\n"),
                                 section=tuple(name for _, name in section), info=token.info.strip().lower()))
        elif token.type == "table_open":
            rows, row, first = [], [], token.map[0]
            while tokens[index].type != "table_close":
                if tokens[index].type == "inline":
                    row.append(tokens[index].content)
                elif tokens[index].type == "tr_close":
                    rows.append(row)
                    row = []
                index += 1
            blocks.append(_Block("table", first + 1 + offset, "", rows=rows,
                                 section=tuple(name for _, name in section)))
        elif token.type == "hr":
            blocks.append(_Block("rule", token.map[0] + 1 + offset, ""))
        index += 1
    return blocks


def _label_match_kind(label: re.Match) -> str | None:
    """The kind of a matched label, its mark ("❌ Bad:") counted."""
    return label_kind((label["mark"] or "") + label["label"])


def _opens_labelled(line: str) -> bool:
    """Whether a line inside a paragraph opens the next part: a capitalised or bold request, answer or
    counter label ("Output: ...", "**Bad:**"), or a mark ("❌ ...")."""
    label = _LABEL.match(line)
    if label is None:
        return bool(_MARK.match(line))
    capitalised = label["label"][0].isupper() or "**" in line[: label.start("label")] or label["mark"]
    return bool(capitalised) and _label_match_kind(label) in ("request", "answer", "counter")


def _unwrap(text: str) -> str:
    """Cell or inline text as an answer: ``<br>`` as line breaks, one inline-code span unwrapped."""
    text = _HTML_BREAK.sub("\n", text).strip()
    code = _INLINE_CODE.fullmatch(text)
    return code.group(1).strip() if code else text


def _list_items(text: str) -> list[tuple[int, str]]:
    """A fenced block's content as answers, each with its line within the block: one per part when
    every part opens with a ``# ...`` comment naming it (the comment dropped); one per line when it
    lists one-line examples (every line, two or more, none indented or blank, opens with a ``label:``
    token or is a ``name/path``; a trailing ``# comment`` dropped); else the whole block."""
    lines = text.split("\n")
    if text.startswith("# "):
        heads = [n for n, line in enumerate(lines) if line.startswith("# ")] + [len(lines)]
        parts = [(start + 1, "\n".join(lines[start + 1:end]).strip("\n")) for start, end in zip(heads, heads[1:])]
        if len(parts) >= 2 and all(part for _, part in parts):
            return [(start + offset, item) for start, part in parts for offset, item in _list_items(part)]
    cleaned = [re.sub(r"\s{2,}#\s.*$", "", line) for line in lines]
    listed = len(cleaned) >= 2 and all(line.strip() and not line[0].isspace() for line in cleaned) and (
        all(_LIST_LABEL.match(line) for line in cleaned) or all(_LIST_PATH.fullmatch(line) for line in cleaned))
    return list(enumerate(cleaned)) if listed else [(0, text)]


def _unquote(text: str) -> str:
    """A blockquote's text without its ``>`` marks, when every line is quoted."""
    lines = text.split("\n")
    if all(line.lstrip().startswith(">") for line in lines):
        return "\n".join(re.sub(r"^\s*>\s?", "", line) for line in lines)
    return text


def _is_template(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def _in_example_section(block: _Block) -> bool:
    return any(EXAMPLE_HEADING.search(title) for title in block.section)


def _section_kind(block: _Block) -> str | None:
    """The label kind of the nearest heading that has one (a "### ❌ Bad" section holds counter-examples)."""
    for title in reversed(block.section):
        kind = label_kind(title.rstrip(":"))
        if kind and len(title.split()) <= 6:
            return kind
        if EXAMPLE_HEADING.search(title):
            return None
    return None


class _Reader:
    """Walks the blocks once, pairing requests with answers."""

    def __init__(self, blocks: list[_Block], anywhere: bool = False) -> None:
        self.blocks = blocks
        self.anywhere = anywhere  # fenced blocks outside example sections are candidates too
        self.found: list[Demonstration] = []
        self.counter: list[CounterExample] = []
        self.request: tuple[str, int] | None = None  # a request waiting for its answer
        self.label_counts: dict[str, int] = {}
        self.request_labels: set[str] = set()  # other labels seen introducing a request ("change")
        self.request_label = ""  # the label of the waiting request
        for block in blocks:
            if block.kind == "paragraph":
                for line in block.text.split("\n"):
                    match = _LABEL.match(line)
                    if match:
                        name = match["label"].lower().strip()
                        self.label_counts[name] = self.label_counts.get(name, 0) + 1

    def emit(self, answer: str, line: int, style: str, kind: str | None = "answer",
             request: tuple[str, int] | None = None) -> None:
        answer = answer.strip("\n")
        if not answer.strip():
            return
        if kind == "counter":
            self.counter.append(CounterExample(answer, line))
            return
        request = request if request is not None else self.request
        self.found.append(Demonstration(answer, request[0] if request else None,
                                        request[1] if request else line, style))
        self.request = None

    def answer_after(self, position: int, inline: str) -> tuple[str, int]:
        """The answer that follows a label: its inline text and the unlabelled blocks after it, up to
        the next request or answer label, table or rule, or heading (unless the answer itself opens
        with a heading, like a changelog entry). Returns (text, index of the next block)."""
        parts = [inline] if inline.strip() else []
        index = position + 1
        headed = index < len(self.blocks) and self.blocks[index].kind == "heading" and not parts
        while index < len(self.blocks):
            block = self.blocks[index]
            if block.kind in ("table", "rule") or (block.kind == "heading" and not headed):
                break
            if block.kind == "paragraph" and self.starts_example(block):
                break
            if block.kind == "heading":
                parts.append("#" * block.level + " " + block.text)
            else:
                parts.append(_unquote(block.text) if block.kind == "paragraph" else block.text)
            index += 1
            if block.kind == "fence" and len(parts) == 1:
                break  # a label, then one fenced block: that block is the answer
        return "\n\n".join(parts), index

    def answer_label_ahead(self, index: int) -> bool:
        """Whether an answer label comes before the next heading: then the unlabelled text in between is
        more of the request, not its answer."""
        for block in self.blocks[index:]:
            if block.kind in ("heading", "rule", "table"):
                return False
            label = _LABEL.match(block.text.split("\n")[0]) if block.kind == "paragraph" else None
            if label and _label_match_kind(label) in ("answer", "request", "counter"):
                return _label_match_kind(label) == "answer"
        return False

    def starts_example(self, block: _Block) -> bool:
        """A paragraph that opens the next request or answer: a known label, a mark, or a label that
        recurs as a request label ("Change:")."""
        first = block.text.split("\n")[0]
        label = _LABEL.match(first)
        if _MARK.match(first):
            return True
        if label is None:
            return False
        name = label["label"].lower().strip()
        return _label_match_kind(label) is not None or name in self.request_labels

    def read(self) -> None:
        index = 0
        while index < len(self.blocks):
            block = self.blocks[index]
            if block.kind in ("heading", "rule"):
                self.request = None
                index += 1
            elif block.kind == "table":
                self.read_table(block)
                index += 1
            elif block.kind == "fence":
                index = self.read_fences(index)
            else:
                index = self.read_paragraph(index)

    def read_paragraph(self, index: int) -> int:
        block = self.blocks[index]
        first, *others = block.text.split("\n")
        label, mark = _LABEL.match(first), _MARK.match(first)
        section = _section_kind(block)
        if label is None and mark is not None:
            # "❌ `Fixed stuff.`" / "✅ fix: stuff": marked lines, or a mark alone before a fenced block.
            if not mark["rest"].strip() and index + 1 < len(self.blocks) and self.blocks[index + 1].kind == "fence":
                self.emit(self.blocks[index + 1].text, self.blocks[index + 1].line, "marked",
                          label_kind(mark["mark"]))
                return index + 2
            for offset, line in enumerate(block.text.split("\n")):
                marked = _MARK.match(line)
                # "✅ `fix: x`" or '❌ "Fixed stuff."' is an example; "✅ Different features" is advice.
                if marked and _QUOTED.fullmatch(marked["rest"].strip()):
                    self.emit(_unwrap(marked["rest"]), block.line + offset, "marked", label_kind(marked["mark"]))
            return index + 1
        if label is None:
            if self.request is not None and not self.answer_label_ahead(index) and (
                    _in_example_section(block) or self.label_counts.get(self.request_label, 0) >= 2):
                # A labelled request ("Question: ..."), then unlabelled text: its answer.
                text, following = self.answer_after(index - 1, "")
                self.emit(text, self.request[1], "labels")
                return following
            if not _in_example_section(block) or _is_template(block.text):
                return index + 1
            following = self.blocks[index + 1] if index + 1 < len(self.blocks) else None
            if section in ("answer", "counter") and block.text.lstrip().startswith("`"):
                for offset, line in enumerate(block.text.split("\n")):
                    self.emit(_unwrap(_BULLET.sub("", line)), block.line + offset, "inline", section)
            elif self.request is None and following is not None and following.kind == "fence" \
                    and section != "counter":
                # A request sentence followed by a fenced block holding the answer.
                self.request = (_request_text(block.text), block.line)
            return index + 1
        kind = _label_match_kind(label)
        inline = "\n".join([label["rest"], *others]).strip("\n")
        if kind == "example":
            # "Examples: `a`, `b`": each code span one answer; "Example:" alone: the fenced block after it.
            spans = _CODE_SPAN.findall(label["rest"])
            for span in spans:
                self.emit(span.strip(), block.line, "inline", section if section == "counter" else "answer",
                          request=None)
            if not spans and not label["rest"].strip() and index + 1 < len(self.blocks) \
                    and self.blocks[index + 1].kind == "fence":
                for offset, text in _list_items(self.blocks[index + 1].text):
                    self.emit(text, self.blocks[index + 1].line + 1 + offset, "fenced", section or "answer",
                              request=None)
                return index + 2
            return index + 1
        if kind == "request":
            text = inline
            if not text.strip() and index + 1 < len(self.blocks) and self.blocks[index + 1].kind == "fence":
                text, index = self.blocks[index + 1].text, index + 1
            # Unlabelled paragraphs up to an answer label are more of the request.
            while self.answer_label_ahead(index + 1) and self.blocks[index + 1].kind in ("paragraph", "fence") \
                    and not self.starts_example(self.blocks[index + 1]):
                index += 1
                text += "\n\n" + self.blocks[index].text
            self.request = (_request_text(_unwrap(text)), block.line) if text.strip() else None
            self.request_label = label["label"].lower().strip()
            return index + 1
        if kind in ("answer", "counter"):
            text, following = self.answer_after(index, inline)
            single = following == index + 1 and not others
            self.emit(_unwrap(text) if single else text, block.line, "labels", kind)
            return following
        # Any other label ("Change: ..."): in an example section, or used twice or more, it introduces
        # a request whose answer follows, on the next lines or after a blank line.
        name = label["label"].lower().strip()
        # A one-letter label is a FAQ's "Q:"/"A:" about the skill, not a demonstration of it; a label on a
        # list item ("- **Start at the edges**: ...") is a definition.
        if len(name) < 2 or not (self.label_counts.get(name, 0) >= 2 or _in_example_section(block)) \
                or not label["rest"].strip() or _BULLET.match(first) or len(name.split()) > MAX_LABEL_WORDS:
            return index + 1
        self.request_labels.add(name)
        request = (_unwrap(label["rest"]), block.line)
        text, following = self.answer_after(index, "\n".join(others))
        if text.strip():
            self.emit(text, block.line, "label-line", "counter" if section == "counter" else "answer", request)
        else:
            self.request = request  # its answer is marked or labelled ("- ✅" and a block)
        return following

    def read_fences(self, index: int) -> int:
        """Fenced blocks not claimed by a label: in an example section, the answer to a waiting request,
        or two in a row (request, answer), or one alone (the answer only)."""
        block = self.blocks[index]
        kind = _section_kind(block)
        if not _in_example_section(block) and kind is None and self.request is None:
            if self.anywhere:  # with checks to decide, any block may be an answer
                self.emit(block.text, block.line, "fenced", request=None)
            return index + 1
        if self.request is not None:
            self.emit(block.text, block.line, "fenced", kind or "answer")
            return index + 1
        following = self.blocks[index + 1] if index + 1 < len(self.blocks) else None
        # Two blocks in a row in different languages (a diff, then its commit message) are a request and its
        # answer; in the same language, two answers.
        if following is not None and following.kind == "fence" and following.section == block.section \
                and kind != "counter" and following.info != block.info:
            self.emit(following.text, block.line, "fenced", request=(block.text, block.line))
            return index + 2
        for offset, text in _list_items(block.text):
            self.emit(text, block.line + 1 + offset, "fenced", kind or "answer", request=None)
        return index + 1

    def read_table(self, block: _Block) -> None:
        header, *rows = block.rows or [[]]
        kinds = [label_kind(_unwrap(cell).strip("*_ ")) for cell in header]
        answers = [n for n, kind in enumerate(kinds) if kind == "answer"]
        requests = [n for n, kind in enumerate(kinds) if kind == "request"]
        counters = [n for n, kind in enumerate(kinds) if kind == "counter"]
        if not answers and not counters and len(header) >= 2 and rows:
            # Headers that say nothing ("Title | Slug"): the column whose every cell is one code span holds
            # the answers, the first other column the requests.
            # A column of bare words (`feat`, `fix`) names kinds, not examples: an answer has some shape.
            coded = [n for n in range(len(header)) if all(n < len(row) and _INLINE_CODE.fullmatch(row[n].strip())
                                                         and re.search(r"\w[\s/:_.(-]+\w", row[n]) for row in rows)]
            if len(coded) == 1:
                answers = coded
                requests = [n for n in range(len(header)) if n != coded[0]][:1]
        if not answers and not counters:
            return
        for number, row in enumerate(rows, 1):
            line = block.line + 1 + number  # header, delimiter row, then the rows
            request = (_request_text(_unwrap(row[requests[0]])), line) if requests and requests[0] < len(row) else None
            for column in counters:
                if column < len(row):
                    self.emit(_unwrap(row[column]), line, "table", "counter")
            if answers and answers[0] < len(row):
                self.emit(_unwrap(row[answers[0]]), line, "table", request=request or ("", 0))


def _request_text(text: str) -> str:
    """A request sentence as the user would give it: quotes around it and a trailing colon dropped."""
    text = text.strip().rstrip(":：").strip()
    quoted = re.fullmatch(r"[\"“](.+)[\"”]", text, flags=re.S)
    return quoted.group(1).strip() if quoted else text


def read_demonstrations(body: str, checks: list[dict[str, Any]] = (), offset: int = 0
                        ) -> tuple[list[Demonstration], list[CounterExample]]:
    """The demonstrations and counter-examples a SKILL.md ``body`` shows (``offset``: lines before it in
    the file). With ``checks``, an answer must pass them: a pair whose answer fails but whose request
    passes is read the other way round, and anything else that fails is dropped."""
    reader = _Reader(_blocks(body, offset), anywhere=bool(checks))
    reader.read()
    counter_texts = {counter.text.strip() for counter in reader.counter}
    found = []
    for example in reader.found:
        request = example.request or None
        if _is_template(example.answer) or example.answer.strip() in counter_texts:
            continue
        if checks and failed_checks(checks, example.answer):
            if request and not failed_checks(checks, request):
                example = Demonstration(request, example.answer, example.line, example.style)
            else:
                continue
        else:
            example = Demonstration(example.answer, request, example.line, example.style)
        found.append(example)
    return found, reader.counter
