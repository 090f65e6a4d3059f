"""The two local engines side by side in one run (a benchmark, not a test): the teacher's generation
of a shipped skill, on transformers (the reference) and on llama.cpp, with flash attention off and on
(s2l's setting, and what llama.cpp's auto setting chooses on this CPU).

Both answer the same teacher prompts, as the synthesize stage writes them: the SKILL.md, the skill's
own worked examples as earlier turns, a request; the answer's opening (chosen once, by the reference
model, and given to each), the stop at the shared ending and decoding held to the skill's checks,
with the teacher's sampling and batch size from config.yaml. The requests describe changes written
here, none from evals.json. Prints and writes, per engine: seconds, completion tokens/s, and the raw
pass rate (the share of answers the teacher would keep: ended, and passing every check of the
skill; with a bootstrap interval); and the tokens/s ratios. Each engine runs alone; nothing else should run on the machine meanwhile.

    python benchmarks/engine_throughput.py [--skill conventional-commits] [--requests 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "engine_throughput.json"
CHANGES = ("fixed a crash when the config file is empty", "added a --verbose flag to the command-line tool",
           "updated the install section of the README", "renamed parse_args to read_arguments",
           "added tests for the date parser", "bumped the version to 2.4.0", "made the search index build twice as fast",
           "removed the deprecated /v1/login endpoint", "fixed the off-by-one error in pagination",
           "moved the CI from Travis to GitHub Actions", "reformatted the code base with black",
           "added dark mode to the settings page", "cached the user profile lookups",
           "upgraded the database driver to version 3", "documented the retry options of the HTTP client",
           "split the orders module into three files")


def requests(count: int) -> list[str]:
    return [f"Write the commit message for this change: I {CHANGES[i % len(CHANGES)]}"
            + (f" (part {i // len(CHANGES) + 1})." if i >= len(CHANGES) else ".") for i in range(count)]


def measured(engine: str, backend, conversations, sampling, starts, stop, constraint, skill) -> dict:
    from s2l.reports.stats import bootstrap
    from s2l.skills.checks import failed_checks

    started = time.monotonic()
    done = backend.complete(conversations, sampling, seed=0, desc=engine, answer_start=starts, stop=stop,
                            constraint=constraint)
    seconds = time.monotonic() - started
    tokens = sum(c.completion_tokens for c in done)
    # As the teacher keeps an answer: it ended its turn (or the shared ending) and passes every check.
    passed = [float(c.finish_reason == "stop" and not failed_checks(skill.checks, c.text)) for c in done]
    row = {"engine": engine, "answers": len(done), "seconds": round(seconds, 2), "completion_tokens": tokens,
           "tokens_per_second": round(tokens / seconds, 1), "ended": sum(c.finish_reason == "stop" for c in done),
           "pass_rate": bootstrap(passed)}
    print(f"{engine:<30} {seconds:7.1f} s {row['tokens_per_second']:7.1f} tok/s  "
          f"pass rate {row['pass_rate']['mean']:.2f} {row['pass_rate']['ci95']}", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skill", default="conventional-commits", help="a shipped skill (skills/<name>)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, help="default: synthesize.teacher.max_new_tokens")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from s2l.data.form import skill_form
    from s2l.data.synthetic import TeacherSettings, teacher_conversation, worked_examples
    from s2l.engine.config import load_config
    from s2l.engine.source import resolve_source, source_sha256
    from s2l.models.backend import Sampling
    from s2l.models.generation import LocalBackend
    from s2l.models.llamacpp import LlamaCppModel
    from s2l.models.model import load_model, load_tokenizer, prepare_base_model
    from s2l.skills.skill import load_skill

    torch.set_num_threads(args.threads)
    config = load_config([])
    synthesis, teacher = config["synthesize"], config["synthesize"]["teacher"]
    sampling = Sampling(teacher["temperature"], teacher["top_p"], args.max_new_tokens or teacher["max_new_tokens"])
    skill = load_skill(ROOT / "skills" / args.skill)
    examples = worked_examples(skill)[: synthesis["teacher_examples"]]
    conversations = [teacher_conversation(skill, request, examples) for request in requests(args.requests)]
    form = skill_form(skill)
    constraint = TeacherSettings.from_config(config).constraint(skill)
    source = config["base_model"]["source"]
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "base"
        prepare_base_model(source, config["base_model"]["id"], model_dir,
                           source_sha256(source, Path(scratch) / "memo.json"))
        tokenizer = load_tokenizer(model_dir)
        reference = LocalBackend(load_model(model_dir), tokenizer, "reference", synthesis["batch_size"])
        starts: str | list[str] = form.opening
        if len(form.alternatives) > 1:  # the likeliest of the openings a check allows, by the reference model
            scores = reference.opening_scores(conversations, form.alternatives)
            starts = [form.alternatives[row.index(max(row))] for row in scores]
        rows = [measured("transformers", reference, conversations, sampling, starts, form.ending, constraint, skill)]
        del reference
        for name, flash_attention in (("llama.cpp, no flash attention", False), ("llama.cpp", True)):
            engine = LlamaCppModel(resolve_source(source).weights, tokenizer, "engine", args.threads, flash_attention)
            rows.append(measured(name, engine.backend(synthesis["batch_size"]), conversations, sampling, starts,
                                 form.ending, constraint, skill))
            del engine
    ratio = round(rows[-1]["tokens_per_second"] / rows[0]["tokens_per_second"], 2)
    flash_ratio = round(rows[-1]["tokens_per_second"] / rows[1]["tokens_per_second"], 2)
    print(f"llama.cpp / transformers tokens/s: {ratio}; flash attention on / off: {flash_ratio}")
    import llama_cpp

    results = {"machine": {"cpus": os.cpu_count(), "threads": args.threads, "python": platform.python_version(),
                           "torch": torch.__version__, "llama_cpp_python": llama_cpp.__version__},
               "skill": args.skill, "requests": args.requests, "batch_size": synthesis["batch_size"],
               "sampling": vars(sampling), "held_to_checks": constraint is not None, "worked_examples": len(examples),
               "engines": rows, "tokens_per_second_ratio": ratio,
               "flash_attention_ratio": flash_ratio}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
