"""The s2l command line: one subcommand per build stage, called by the Snakemake rules."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from s2l.dataset import DatasetError, DatasetSettings
from s2l.model import ModelSourceError
from s2l.schemas import SchemaError
from s2l.skill import SkillError, load_skill, read_parsed_skill
from s2l.specs import read_spec, software_versions

# Offline by default: nothing is ever fetched from a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

USER_ERRORS = (SkillError, DatasetError, ModelSourceError, SchemaError)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_stage(args: argparse.Namespace, outputs: dict[str, Path], build: Callable[[dict[str, Any]], None]) -> None:
    """Restore the outputs from the store when their content key is there; else build and store them.

    Either way a manifest (``--manifest``) records the key, the spec it was computed from and a
    sha256 per output.
    """
    from s2l.store import Store, output_sha256

    spec = read_spec(args.spec)
    stage, key = spec["stage"], spec["key"]
    store = Store(args.cache_dir) if args.cache_dir else None
    restored = store is not None and store.has(stage, key)
    if restored:
        store.restore(stage, key, outputs)
        print(f"{stage}: restored from the store, key {key[:12]}")
    else:
        build(spec)
    manifest = {
        "stage": stage,
        "key": key,
        "spec": spec,
        "outputs": {role: {"path": str(path), "sha256": output_sha256(path)} for role, path in outputs.items()},
        "restored_from_store": restored,
        "software": software_versions(),
    }
    if store is not None and not restored:
        store.save(stage, key, outputs, manifest)
    write_json(args.manifest, manifest)


def base_model_provenance(model_dir: Path) -> dict[str, Any]:
    from s2l.model import read_manifest

    manifest = read_manifest(model_dir)
    return {"model_id": manifest["model_id"], "weights_sha256": manifest["weights_sha256"], "path": str(model_dir)}


def cmd_prepare_model(args: argparse.Namespace) -> None:
    run_stage(args, {"model": args.out}, lambda spec: build_model(args, spec))


def build_model(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from s2l.model import prepare_base_model

    settings = spec["config"]["base_model"]
    manifest = prepare_base_model(settings["source"], settings["id"], args.out, spec["weights_sha256"])
    print(f"prepared {manifest['model_id']} ({manifest['parameters']:,} parameters) in {args.out}")


def report_warnings(skill_key: str, warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: skill {skill_key}: {warning}", file=sys.stderr)


def cmd_parse_skill(args: argparse.Namespace) -> None:
    run_stage(args, {"skill.json": args.out}, lambda spec: build_parsed_skill(args, spec))


def build_parsed_skill(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    skill = load_skill(Path(spec["inputs"]["dir"]), strict=spec["config"]["strict"])
    report_warnings(skill.key, skill.warnings)
    write_json(args.out, skill.to_json())


def cmd_check_skill(args: argparse.Namespace) -> None:
    for folder in args.folders:
        skill = load_skill(folder, strict=args.strict)
        report_warnings(skill.key, skill.warnings)
        print(f"ok: {folder} ({len(skill.evals)} evals, {len(skill.warnings)} warnings)")


def cmd_synthesize(args: argparse.Namespace) -> None:
    run_stage(args, {"records.jsonl": args.out}, lambda spec: build_synthetic(args, spec))


def build_synthetic(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from s2l.generation import LocalBackend
    from s2l.model import load_model, load_tokenizer
    from s2l.synthetic import Role, synthesize

    set_threads(args.threads)
    settings = spec["config"]
    generation, seed = settings["generation"], settings["seed"]
    skill = read_parsed_skill(args.skill)
    model_id = base_model_provenance(args.model)["model_id"]
    backend = LocalBackend(load_model(args.model), load_tokenizer(args.model), model_id, generation["batch_size"])
    roles = {name: Role(backend="local", model=model_id, **generation[name]) for name in ("generator", "teacher")}
    records = synthesize(
        skill,
        generator=(backend, roles["generator"]),
        teacher=(backend, roles["teacher"]),
        train_examples=generation["train_examples"],
        eval_examples=generation["eval_examples"],
        seed=seed,
        teacher_attempts=generation["teacher_attempts"],
    )
    count = write_jsonl(args.out, records)
    print(f"{skill.key}: wrote {count} synthetic records to {args.out}")


def cmd_dataset(args: argparse.Namespace) -> None:
    outputs = {"records.jsonl": args.out, "report.json": args.report}
    run_stage(args, outputs, lambda spec: build_dataset_files(args, spec))


def build_dataset_files(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from s2l.dataset import build_dataset
    from s2l.model import load_tokenizer

    settings = DatasetSettings(**spec["config"]["dataset"])
    skill = read_parsed_skill(args.skill)
    records, report = build_dataset(read_jsonl(args.synthetic), skill, load_tokenizer(args.model), settings)
    write_jsonl(args.out, records)
    write_json(args.report, report)
    print(f"{skill.key}: kept {report['kept']} of {report['input_records']}; dropped {report['dropped']}")


def cmd_train(args: argparse.Namespace) -> None:
    run_stage(args, {"adapter": args.out}, lambda spec: build_adapter(args, spec))


def build_adapter(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from s2l.train import LoraSettings, TrainingSettings, train_adapter, write_model_card

    set_threads(args.threads)
    lora = LoraSettings(**spec["config"]["lora"])
    training = TrainingSettings(**spec["config"]["training"])
    skill = read_parsed_skill(args.skill)
    result = train_adapter(args.model, read_jsonl(args.dataset), lora, training, spec["config"]["seed"], args.out)
    provenance = {
        "skill": skill.identity,
        "base_model": base_model_provenance(args.model),
        "seed": spec["config"]["seed"],
        "stage": {"name": spec["stage"], "version": spec["version"], "content_key": spec["key"]},
        "software": software_versions(),
    }
    write_model_card(args.out, provenance, lora, training, result)
    print(f"{skill.key}: adapter in {args.out} ({result.steps} steps, final loss {result.final_loss:.4f})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    run_stage(args, {"report.json": args.out}, lambda spec: build_eval_report(args, spec))


def build_eval_report(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    from s2l.evaluate import EvalSettings, evaluate
    from s2l.model import load_model, load_tokenizer
    from s2l.schemas import validate

    set_threads(args.threads)
    settings = EvalSettings(**spec["config"]["eval"])
    seed = spec["config"]["seed"]
    skill = read_parsed_skill(args.skill)
    model = load_model(args.model, adapter_dir=args.adapter)
    results = evaluate(model, load_tokenizer(args.model), skill, read_jsonl(args.dataset), settings, seed)
    report = {
        "skill": skill.identity,
        "base_model": base_model_provenance(args.model),
        "adapter": str(args.adapter),
        "seed": seed,
        "content_key": spec["key"],
        "settings": spec["config"]["eval"],
        "software": software_versions(),
        **results,
    }
    validate(report, "eval_report.schema.json")
    write_json(args.out, report)
    rates = {c: v["pass_rate"]["all"]["mean"] for c, v in results["conditions"].items()}
    print(f"{skill.key}: pass rates {rates}")


def cmd_benchmark(args: argparse.Namespace) -> None:
    outputs = {f"benchmark{suffix}": args.out_prefix.with_suffix(suffix) for suffix in (".json", ".md", ".png")}
    run_stage(args, outputs, lambda spec: build_benchmark(args))


def build_benchmark(args: argparse.Namespace) -> None:
    from s2l.report import markdown, plot, summarize
    from s2l.schemas import validate

    summary = summarize([json.loads(Path(path).read_text(encoding="utf-8")) for path in args.reports])
    validate(summary, "benchmark.schema.json")
    write_json(args.out_prefix.with_suffix(".json"), summary)
    args.out_prefix.with_suffix(".md").write_text(markdown(summary), encoding="utf-8")
    plot(summary, args.out_prefix.with_suffix(".png"))
    print(markdown(summary))


def cmd_status(args: argparse.Namespace) -> None:
    from s2l.plan import build_plan, load_config
    from s2l.status import status_table
    from s2l.store import Store

    config = load_config(args.configfile)
    plan = build_plan(config, args.directory)
    rows = status_table(plan, args.directory, Store(args.directory / config["cache_dir"]))
    width = max(len(skill) for skill, *_ in rows)
    for skill, stage, state, why in rows:
        print(f"{skill:<{width}}  {stage:<9}  {state:<10}  {why}".rstrip())


def cmd_cache_prune(args: argparse.Namespace) -> None:
    from s2l.plan import load_config
    from s2l.store import Store

    store = Store(Path(load_config(args.configfile)["cache_dir"]))
    removed = store.prune(args.older_than)
    print(f"removed {len(removed)} store entries older than {args.older_than} days from {store.root}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2l", description="Skill-to-LoRA build stages. The Snakemake workflow calls these; see README.md."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def stage(name: str, handler: Callable[[argparse.Namespace], None], help: str, *inputs: str) -> argparse.ArgumentParser:
        sub = command(name, handler, help)
        sub.add_argument("--spec", type=Path, required=True, help="stage spec written by the workflow (build/specs/)")
        for option in inputs:
            sub.add_argument(f"--{option}", type=Path, required=True)
        sub.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
        return sub

    stage("prepare-model", cmd_prepare_model, "turn the configured base model into a safetensors folder",
          "out", "manifest").set_defaults(cache_dir=None)  # a copy per model would cost more than a rebuild
    stage("parse-skill", cmd_parse_skill, "parse and validate a skill; write it as JSON",
          "out", "manifest").set_defaults(cache_dir=None)
    check = command("check-skill", cmd_check_skill, "validate skill folders and print their warnings")
    check.add_argument("folders", type=Path, nargs="+", help="skill folders (each with a SKILL.md)")
    check.add_argument("--strict", action="store_true", help="treat spec deviations as errors")

    def stored_stage(name: str, handler: Callable[[argparse.Namespace], None], help: str, *inputs: str) -> argparse.ArgumentParser:
        sub = stage(name, handler, help, *inputs, "manifest")
        sub.add_argument("--cache-dir", type=Path, help="content-addressed store to restore from and save to")
        return sub

    stored_stage("synthesize", cmd_synthesize, "generate requests and teacher answers", "skill", "model", "out")
    stored_stage("dataset", cmd_dataset, "validate and filter synthetic records into a dataset",
                 "skill", "synthetic", "model", "out", "report")
    stored_stage("train", cmd_train, "train the skill's LoRA adapter", "skill", "dataset", "model", "out")
    stored_stage("evaluate", cmd_evaluate, "no skill vs skill in context vs adapter", "skill", "dataset", "model",
                 "adapter", "out")
    bench = stored_stage("benchmark", cmd_benchmark, "aggregate eval reports into build/benchmark.{json,md,png}",
                         "out-prefix")
    bench.add_argument("reports", type=Path, nargs="+", help="build/eval/<skill>.json files")

    status = command("status", cmd_status, "per skill and stage: up to date, stale (and why) or restorable")
    status.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="config files merged over config.yaml, as given to snakemake")
    status.add_argument("--directory", "-d", type=Path, default=Path("."), help="the workflow's work directory")
    cache = command("cache", cmd_cache_prune, "prune the content-addressed store")
    cache.add_argument("action", choices=["prune"])
    cache.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                       help="delete entries not stored or restored for this many days")
    cache.add_argument("--configfile", type=Path, nargs="*", default=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
