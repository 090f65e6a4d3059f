"""The s2l command line: argument parsing for the build stages (s2l/stages.py), ``check-skill``,
``check-adapter``, ``serve``, ``status``, ``cost`` and ``store prune``. Stage subcommands carry the rule names
with hyphens."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from s2l import stages
from s2l.engine.pipeline import STAGES
from s2l.engine.runner import STORE_MODES, StageRun
from s2l.errors import UserError
from s2l.models.routing import DEFAULT_THRESHOLD


def stage_run(args: argparse.Namespace, *outputs: Path) -> StageRun:
    """The job's run, its outputs named as its stage declares them (s2l/engine/pipeline.py), in that order."""
    names = tuple(STAGES[args.stage].outputs)
    if len(names) != len(outputs):
        raise ValueError(f"{args.stage} declares outputs {names}, got {len(outputs)} paths")
    return StageRun(args.spec, dict(zip(names, outputs)), args.manifest, args.store_dir, args.store)


def cmd_prepare_model(args: argparse.Namespace) -> None:
    stages.prepare_model(stage_run(args, args.out), args.out)


def cmd_parse_skill(args: argparse.Namespace) -> None:
    stages.parse_skill(stage_run(args, args.out), args.model, args.out)


def cmd_check_skill(args: argparse.Namespace) -> None:
    from s2l.engine.config import load_config

    model = args.model if args.model.is_dir() else None
    if not stages.check_skills(args.folders, args.strict, load_config(args.configfile), model):
        raise SystemExit(1)


def cmd_check_adapter(args: argparse.Namespace) -> None:
    import json

    from s2l.models.serving import vllm_lora_problems, vllm_max_lora_rank

    folders = [path for path in args.adapters if path.is_dir()]
    for path in args.adapters:
        if path not in folders:
            # `build/adapters/*` also matches each adapter's metrics file: a file is no adapter folder.
            print(f"{path}: skipped, not a folder" if path.exists() else f"{path}: no such folder", file=sys.stderr)
    failed = not folders or any(not path.exists() for path in args.adapters)
    for adapter in folders:
        problems = vllm_lora_problems(adapter)
        for problem in problems:
            print(f"{adapter}: {problem}", file=sys.stderr)
        if problems:
            failed = True
        else:
            rank = json.loads((adapter / "adapter_config.json").read_text())["r"]
            print(f"{adapter}: passes the structural checks of vLLM's LoRA loader "
                  f"(serve with --enable-lora --max-lora-rank {vllm_max_lora_rank(rank)})")
    if failed:
        raise SystemExit(1)


def cmd_synthesize(args: argparse.Namespace) -> None:
    run = stage_run(args, args.out, args.usage)
    stages.synthesize(run, args.skill, args.model, args.out, args.usage, args.threads)


def cmd_dataset(args: argparse.Namespace) -> None:
    run = stage_run(args, args.out, args.report)
    stages.dataset(run, args.skill, args.synthetic, args.usage, args.model, args.out, args.report)


def cmd_train(args: argparse.Namespace) -> None:
    run = stage_run(args, args.out, args.metrics)
    stages.train(run, args.skill, args.dataset, args.model, args.out, args.metrics, args.threads)


def cmd_train_shared(args: argparse.Namespace) -> None:
    run = stage_run(args, args.out, args.metrics)
    stages.train_shared(run, args.datasets, args.model, args.out, args.metrics, args.threads)


def cmd_merge(args: argparse.Namespace) -> None:
    stages.merge(stage_run(args, args.out), args.model, args.adapter, args.out, args.threads)


def cmd_prepare_serving(args: argparse.Namespace) -> None:
    stages.prepare_serving(stage_run(args, args.out), args.skills, args.adapters, args.model, args.out)


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import llama_cpp.server.app  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise UserError(f"s2l serve needs llama-cpp-python's server ({error}): make setup installs it, or "
                        f"pip install 'llama-cpp-python[server]'") from None
    from s2l.models.llamacpp_server import read_serving, serving_app

    models, descriptions = read_serving(args.folder)
    app = serving_app(models, descriptions, args.threads, args.threshold)
    print(f"serving {', '.join(entry['model_alias'] for entry in models)} and auto (routed) on "
          f"http://{args.host}:{args.port}/v1", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def cmd_evaluate(args: argparse.Namespace) -> None:
    run = stage_run(args, args.out, args.markdown)
    stages.evaluate(run, args.skill, args.dataset, args.model, args.adapter, args.out, args.markdown, args.threads)


def cmd_evaluate_controls(args: argparse.Namespace) -> None:
    stages.evaluate_controls(stage_run(args, args.out), args.skill, args.dataset, args.model,
                             args.report, args.shared_adapter, args.wrong_adapter, args.out, args.threads)


def cmd_benchmark(args: argparse.Namespace) -> None:
    outputs = [args.out_prefix.with_suffix(Path(path).suffix) for path in STAGES["benchmark"].outputs.values()]
    stages.benchmark(stage_run(args, *outputs), args.reports, args.controls, args.usage, args.out_prefix)


def cmd_status(args: argparse.Namespace) -> None:
    from s2l.engine.config import load_config
    from s2l.engine.plan import build_plan
    from s2l.engine.status import status_table
    from s2l.engine.store import Store

    config = load_config(args.configfile)
    plan = build_plan(config, args.directory)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows = status_table(plan, args.directory, Store(args.directory / config["store_dir"]))
    width = max(len(skill) for skill, *_ in rows)
    stage_width = max(len(stage) for _, stage, *_ in rows)
    for skill, stage, state, why in rows:
        print(f"{skill:<{width}}  {stage:<{stage_width}}  {state:<10}  {why}".rstrip())


def cmd_cost(args: argparse.Namespace) -> None:
    from s2l.data.cost import cost_table
    from s2l.engine.config import load_config
    from s2l.engine.plan import discover_skills
    from s2l.skills.skill import load_skill

    config = load_config(args.configfile)
    skills_dir = Path(config["skills_dir"])
    found, warnings = discover_skills(skills_dir if skills_dir.is_absolute() else args.directory / skills_dir)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    synthesis = config["synthesize"]
    print(f"{'skill':<24} {'role':<10} {'backend':<8} {'requests':>11} {'prompt tok':>11} {'compl. tok':>11} "
          f"{'cost (max)':>10}")
    for skill, role, guess in cost_table([load_skill(folder) for folder, _ in found.values()], synthesis):
        settings = synthesis[role]
        cost = guess.cost_max(settings.get("connection", {}).get("price_per_million_tokens"))
        print(f"{skill:<24} {role:<10} {settings['backend']:<8} {guess.requests_min:>5}-{guess.requests_max:<5} "
              f"{guess.prompt_tokens_max:>11,} {guess.completion_tokens_max:>11,} "
              f"{'-' if cost is None else f'{cost:.2f}':>10}")
    print("requests: fewest-most; tokens and cost: at most (about 4 characters a token); "
          "requests in the request cache are free")


def cmd_store_prune(args: argparse.Namespace) -> None:
    from s2l.engine.config import load_config
    from s2l.engine.store import Store

    store = Store(Path(load_config(args.configfile)["store_dir"]))
    removed = store.prune(args.older_than)
    print(f"removed {len(removed)} store entries older than {args.older_than} days from {store.root}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2l", description="Skill-to-LoRA build stages. The Snakemake workflow calls these; see README.md."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], None], help: str, aliases: tuple[str, ...] = ()
                ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, aliases=list(aliases))
        sub.set_defaults(handler=handler)
        return sub

    def stage(name: str, handler: Callable[[argparse.Namespace], None], help: str, *paths: str
              ) -> argparse.ArgumentParser:
        sub = command(name, handler, help)
        sub.set_defaults(stage=name.replace("-", "_"))
        sub.add_argument("--spec", type=Path, required=True, help="stage spec written by the workflow (build/specs/)")
        sub.add_argument("--manifest", type=Path, required=True, help="where to write the outputs' manifest")
        for option in paths:
            sub.add_argument(f"--{option}", type=Path, required=True)
        sub.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
        sub.add_argument("--log", type=Path, help="also write what the job prints (stdout and stderr) to this file")
        if STAGES[name.replace("-", "_")].stored:
            sub.add_argument("--store-dir", type=Path, help="content-addressed store to restore from and save to")
            sub.add_argument("--store", choices=STORE_MODES, default="auto",
                             help="auto: restore when stored, else build and store; write: build afresh and "
                                  "replace the stored entry; off: build, store nothing")
        else:
            sub.set_defaults(store_dir=None, store="off")
        return sub

    stage("prepare-model", cmd_prepare_model, "turn the configured base model into a safetensors folder",
          "out")
    stage("parse-skill", cmd_parse_skill, "parse and validate a skill; write it as JSON", "model", "out")
    check = command("check-skill", cmd_check_skill,
                    "validate skill folders and say what a build will make of each: worked examples found (with "
                    "line numbers), counter-examples, the answers' form, checks, seed search and a verdict; "
                    "exit 1 if any failed")
    check.add_argument("folders", type=Path, nargs="+", help="skill folders (each with a SKILL.md)")
    check.add_argument("--strict", action="store_true", help="treat spec deviations as errors")
    check.add_argument("--model", type=Path, default=Path("build/models/base"),
                       help="the prepared base model, to refuse a skill too long for its context as the build "
                            "would (default: build/models/base; not checked when it is not there)")
    check.add_argument("--configfile", type=Path, nargs="*", default=[],
                       help="config files merged over config.yaml, as given to snakemake (worked examples wanted, "
                            "seed search, judge)")
    adapters = command("check-adapter", cmd_check_adapter,
                       "check adapter folders against what vLLM's LoRA loader accepts, structurally (the files, "
                       "fields and tensor shapes it reads; nothing is served); exit 1 if any fails")
    adapters.add_argument("adapters", type=Path, nargs="+",
                          help="adapter folders (build/adapters/<skill>); files among them are skipped, so "
                               "build/adapters/* works")
    stage("synthesize", cmd_synthesize, "generate requests and teacher answers; --usage: what each role's "
          "backend sent, its tokens, retries and cache hits", "skill", "model", "out", "usage")
    stage("dataset", cmd_dataset, "validate and filter synthetic records into a dataset",
          "skill", "synthetic", "usage", "model", "out", "report")
    stage("train", cmd_train, "train the skill's LoRA adapter; --metrics: loss, tokens/s and peak memory per step "
          "(JSON lines)", "skill", "dataset", "model", "out", "metrics")
    shared = stage("train-shared", cmd_train_shared, "train the shared-adapter control on every skill's dataset",
                   "model", "out", "metrics")
    shared.add_argument("--datasets", type=Path, nargs="+", required=True, help="build/datasets/<skill>.jsonl files")
    stage("merge", cmd_merge, "merge the skill's adapter into the base model's weights (merge.enabled)",
          "model", "adapter", "out")
    serving = stage("prepare-serving", cmd_prepare_serving, "every skill's adapter as a GGUF LoRA for llama.cpp's "
                    "server, its config file and the skills' descriptions (build/serve)", "model", "out")
    serving.add_argument("--skills", type=Path, nargs="+", required=True, help="build/skills/<skill>.json files")
    serving.add_argument("--adapters", type=Path, nargs="+", required=True, help="build/adapters/<skill> folders")
    serve = command("serve", cmd_serve,
                    "serve a build's adapters on llama.cpp's OpenAI-compatible server: model 'base', one model per "
                    "skill (its key), and 'auto', routed to the skill whose description a request matches")
    serve.add_argument("folder", type=Path, nargs="?", default=Path("build/serve"),
                       help="what snakemake build/serve prepared (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp CPU threads")
    serve.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                       help="the router's least match score for a skill; below it 'auto' goes to the base model "
                            "(default: %(default)s, chosen by benchmarks/routing.py)")
    stage("evaluate", cmd_evaluate, "no skill vs skill in context vs adapter; --markdown: the report for people",
          "skill", "dataset", "model", "adapter", "out", "markdown")
    controls = stage("evaluate-controls", cmd_evaluate_controls, "the controls on a skill's eval prompts: another "
                     "skill's adapter and the shared adapter; --report: the skill's own eval report",
                     "skill", "dataset", "model", "report", "shared-adapter", "out")
    controls.add_argument("--wrong-adapter", type=Path, help="another skill's adapter (absent for a one-skill build)")
    bench = stage("benchmark", cmd_benchmark, "aggregate eval reports into build/benchmark.{json,md,png}",
                  "out-prefix")
    bench.add_argument("reports", type=Path, nargs="+", help="build/eval/<skill>.json files")
    bench.add_argument("--controls", type=Path, nargs="*", default=[],
                       help="build/eval/controls/<skill>.json files (with evaluate.controls)")
    bench.add_argument("--usage", type=Path, nargs="*", default=[],
                       help="build/synthetic/<skill>.usage.json files: what generating each skill's data cost")

    status = command("status", cmd_status, "per skill and stage: up to date, stale (and why) or restorable")
    status.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="config files merged over config.yaml, as given to snakemake")
    status.add_argument("--directory", "-d", type=Path, default=Path("."), help="the workflow's work directory")
    cost = command("cost", cmd_cost, "before a build: requests and tokens each role would be asked for, and "
                   "the cost at the configured prices")
    cost.add_argument("--configfile", type=Path, nargs="*", default=[],
                      help="config files merged over config.yaml, as given to snakemake")
    cost.add_argument("--directory", "-d", type=Path, default=Path("."), help="the workflow's work directory")

    # "cache": the command's name before the store's setting became store_dir.
    store = command("store", cmd_store_prune, "prune the content-addressed store (store_dir)", aliases=("cache",))
    store.add_argument("action", choices=["prune"])
    store.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                       help="delete entries not stored or restored for this many days")
    store.add_argument("--configfile", type=Path, nargs="*", default=[])
    return parser


class Tee(io.TextIOBase):
    """A text stream writing to several: the job's terminal (or cluster job output) and its log."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return self.streams[0].isatty()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        if getattr(args, "log", None):
            args.log.parent.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(open(args.log, "w", encoding="utf-8", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(Tee(sys.stdout, log)))
            stack.enter_context(contextlib.redirect_stderr(Tee(sys.stderr, log)))
        try:
            args.handler(args)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Exception:  # printed here, so that the log holds it too
            traceback.print_exc()
            return 1
    return 0
