"""Sweep the settings that decide whether an adapter carries its skill (a benchmark, not a test).

Teacher part (``--teacher``): per skill, the generator writes ``--requests`` requests once; then,
for each number of worked examples shown to the teacher, one sampled answer per request is scored
by the skill's checks: the raw pass rate that rejection sampling starts from.

Training part (``--training WORKDIR``): on the datasets a finished build left in WORKDIR, adapters
are trained over a grid of epochs x learning rate and each one's sampled answers to the skill's
evals.json prompts are scored by its checks (the adapter condition of the evaluation).

The raw figures go to ``benchmarks/results/sweep.json``; the default number of worked examples comes
from it (the learning rate, since, from ``benchmarks/results/learning_rate/``).

    python benchmarks/sweep.py --teacher --skills conventional-commits google-docstrings keep-a-changelog
    python benchmarks/sweep.py --training /tmp/s2l-bench-xyz --skills conventional-commits
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import fmean

from s2l.engine.config import load_config, section_settings
from s2l.engine.pipeline import DATASET, MODEL, PARSED_SKILL

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "sweep.json"


def teacher_sweep(skills: list[str], model_dir: Path, requests_per_skill: int, shown: list[int],
                  config: dict) -> list[dict]:
    from s2l.data.synthetic import Role, TeacherSettings, answer_requests, generate_requests, worked_examples
    from s2l.models.generation import LocalBackend
    from s2l.models.model import load_model, load_tokenizer
    from s2l.skills.skill import load_skill

    generation = config["synthesize"]
    backend = LocalBackend(load_model(model_dir), load_tokenizer(model_dir), "base", generation["batch_size"])
    generator = Role(**{**generation["generator"], "model": "base"})
    teacher = Role(**{**generation["teacher"], "model": "base"})
    teacher_settings = TeacherSettings.from_config(config)
    rows = []
    for key in skills:
        skill = load_skill(ROOT / "skills" / key)
        requests = generate_requests(skill, backend, generator, requests_per_skill, config["seed"]).requests
        seeds = worked_examples(skill)
        for examples in shown:
            started = time.perf_counter()
            answers = answer_requests(skill, requests, [f"r{i}" for i in range(len(requests))], backend, teacher,
                                      replace(teacher_settings, examples=examples, samples=1), config["seed"], seeds,
                                      learn=False, desc=f"{examples} examples")
            row = {"skill": key, "teacher_examples": examples, "requests": len(requests),
                   "passed": sum(bool(a.passed) for a in answers), "seconds": time.perf_counter() - started}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def training_sweep(skills: list[str], workdir: Path, epochs: list[float], rates: list[float], config: dict) -> list[dict]:
    from s2l.models.model import load_model, load_tokenizer
    from s2l.reports.evaluate import EvalSettings, eval_prompts, evaluate_condition, torch_answerer
    from s2l.skills.skill import read_parsed_skill
    from s2l.stages import read_jsonl
    from s2l.training.train import LoraSettings, TrainingRun, TrainingSettings, train_adapter

    model_dir = workdir / MODEL
    tokenizer = load_tokenizer(model_dir)
    settings = section_settings(EvalSettings, config["evaluate"])
    lora, defaults = section_settings(LoraSettings, config["lora"]), section_settings(TrainingSettings, config["training"])
    rows = []
    for key in skills:
        skill = read_parsed_skill(workdir / PARSED_SKILL.format(skill=key))
        dataset_file = workdir / DATASET.format(skill=key)
        records = read_jsonl(dataset_file)
        prompts = [p for p in eval_prompts(skill, records) if p.source == "evals"]
        for epoch_count in epochs:
            for rate in rates:
                training = replace(defaults, epochs=epoch_count, learning_rate=rate)
                with tempfile.TemporaryDirectory(prefix="s2l-sweep-") as scratch:
                    started = time.perf_counter()
                    adapter = Path(scratch) / "adapter"
                    where = TrainingRun(Path(scratch) / "checkpoints", Path(scratch) / "metrics.jsonl")
                    result = train_adapter(model_dir, [dataset_file], lora, training,
                                           config["seed"], adapter, where, config["base_model"]["id"])
                    trained = time.perf_counter() - started
                    loaded = load_model(model_dir, {"adapter": adapter})
                    scored = evaluate_condition(loaded, tokenizer, skill, prompts, "adapter", {"adapter": adapter},
                                                settings, config["seed"],
                                                torch_answerer(loaded, tokenizer, settings.batch_size))
                row = {"skill": key, "epochs": epoch_count, "learning_rate": rate, "train_records": result.train_records,
                       "steps": result.steps, "final_loss": result.final_loss, "train_seconds": trained,
                       "evals_pass_rate": scored["pass_rate"]["evals"]["mean"],
                       "evals_pass_rate_ci95": scored["pass_rate"]["evals"]["ci95"],
                       "evals_reference_nll": fmean(a["reference_nll"] for a in scored["answers"])}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skills", nargs="+", default=["conventional-commits", "google-docstrings", "keep-a-changelog"])
    parser.add_argument("--teacher", action="store_true", help="sweep the number of worked examples shown")
    parser.add_argument("--model", type=Path, help="prepared base model folder (teacher part)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--shown", type=int, nargs="+", default=[0, 1, 3])
    parser.add_argument("--training", type=Path, metavar="WORKDIR", help="sweep training on WORKDIR's datasets")
    parser.add_argument("--epochs", type=float, nargs="+", default=[2, 4])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[5e-4, 1e-3])
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="config files merged over config.yaml (tests/quick.yaml: a tiny run that only proves the script)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the raw figures (default: %(default)s)")
    args = parser.parse_args()

    config = load_config(args.configfile)
    results = json.loads(args.json.read_text(encoding="utf-8")) if args.json.is_file() else {}
    if args.teacher:
        model = args.model or (args.training or Path(".")) / MODEL
        results["teacher"] = teacher_sweep(args.skills, model, args.requests, args.shown, config)
    if args.training:
        results["training"] = training_sweep(args.skills, args.training, args.epochs, args.learning_rates, config)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
