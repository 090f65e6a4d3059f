"""The build's stages, one declaration each: what a stage is called, its version, the settings that
key it, the stages it reads, whether the store keeps it, what it asks a scheduler for, and where its
log and timing go, and what it writes. The build paths are spelled here and nowhere else. Specs and plan keys (s2l/engine/specs.py), the store's use (s2l/engine/runner.py, the CLI),
``s2l status`` and the benchmarks read these; the rules (rules/*.smk) stay the graph users read, and
tests/test_pipeline.py checks that their inputs and these declarations agree.

Stage names are the rule names, everywhere: specs, manifests, store folders, logs, ``s2l status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Build paths ({skill}: a skill's key). The rules name these; the stages below declare which they write.
MODEL = "build/models/base"
PARSED_SKILL = "build/skills/{skill}.json"
SYNTHETIC = "build/synthetic/{skill}.jsonl"
USAGE_SUFFIX = ".usage.json"
USAGE = "build/synthetic/{skill}" + USAGE_SUFFIX
DATASET = "build/datasets/{skill}.jsonl"
DATASET_REPORT = "build/datasets/{skill}.report.json"
ADAPTER = "build/adapters/{skill}"
# Beside the adapter, not in it: timings differ run to run, the adapter's bytes must not.
METRICS = ADAPTER + ".metrics.jsonl"
# One adapter trained on every skill's data; "_shared" can be no skill's key.
SHARED_ADAPTER = "build/adapters/_shared"
SHARED_METRICS = SHARED_ADAPTER + ".metrics.jsonl"
EVAL_REPORT = "build/eval/{skill}.json"
EVAL_MARKDOWN = "build/eval/{skill}.md"
CONTROLS_REPORT = "build/eval/controls/{skill}.json"
MERGED = "build/merged/{skill}"
# Every skill's adapter for llama.cpp's server (s2l serve).
SERVING = "build/serve"
BENCHMARK_PREFIX = "build/benchmark"
BENCHMARK_JSON, BENCHMARK_MARKDOWN, BENCHMARK_PLOT = (BENCHMARK_PREFIX + suffix for suffix in (".json", ".md", ".png"))
SPECS_DIR = Path("build/specs")
MANIFESTS_DIR = Path("build/manifests")
LOGS_DIR = "build/logs"
TIMINGS_DIR = "build/benchmarks"

# What a stage asks a scheduler for: the base model for inference or training (with the configured
# GPUs), the base model's weights in host memory only (converting, merging), or little.
INFERENCE, TRAINING, HOST, LIGHT = "inference", "training", "host", "light"


@dataclass(frozen=True)
class Stage:
    name: str
    # What it writes besides its manifest: output name (as its manifest names it) -> path, in the order
    # its command takes them.
    outputs: dict[str, str] = field(default_factory=dict)
    # Outputs that are folders.
    folders: tuple[str, ...] = ()
    # Bump when the stage's code changes what it produces; that reruns it for every skill.
    version: int = 1
    # Config keys that shape the output: in the stage's plan key.
    config_keys: tuple[str, ...] = ()
    # Config keys that only decide whether it passes: in its spec (a change reruns it), not in its key.
    check_keys: tuple[str, ...] = ()
    # Stages of the same skill (or the build's own) whose outputs it reads: their plan keys are in its
    # plan key, their output bytes in its input key.
    upstream: tuple[str, ...] = ()
    # Stages whose outputs it reads for other skills: every skill's, or the wrong adapter's.
    other_skills: tuple[str, ...] = ()
    # Stages whose unkeyed outputs it reads as facts of its job (what generation cost).
    facts_from: tuple[str, ...] = ()
    per_skill: bool = True
    # Kept in the content-addressed store; a stage whose copy would cost more than a rebuild is not.
    stored: bool = True
    # Outputs that record how a build went (wall time, requests sent) rather than what it made: a later
    # stage may read them, but they are left out of its input key, so a rerun that reproduced the data
    # byte for byte still cuts off early.
    unkeyed_outputs: tuple[str, ...] = ()
    resources: str = LIGHT
    # In a skill's chain (the stage-timing benchmark's columns); the controls and the benchmark are not.
    in_chain: bool = True

    def output(self, name: str, skill: str = "{skill}") -> str:
        return self.outputs[name].format(skill=skill)

    def log(self, skill: str = "{skill}") -> str:
        return f"{LOGS_DIR}/{self.name}.log" if not self.per_skill else f"{LOGS_DIR}/{self.name}/{skill}.log"

    def benchmark(self, skill: str = "{skill}") -> str:
        """The file of Snakemake's ``benchmark:`` directive (seconds, peak memory)."""
        return (f"{TIMINGS_DIR}/{self.name}.tsv" if not self.per_skill
                else f"{TIMINGS_DIR}/{self.name}/{skill}.tsv")


# What the evaluation conditions depend on; ``evaluate.controls`` only says which conditions run.
EVAL_KEYS = ("evaluate.engine", "evaluate.max_new_tokens", "evaluate.batch_size", "evaluate.samples",
             "evaluate.temperature", "evaluate.top_p", "evaluate.judge", "seed")
# Only a skill without checks has its teacher answers graded by the judge: only its synthesize key holds it.
JUDGE_KEYS = ("evaluate.judge",)

STAGES = {stage.name: stage for stage in (
    Stage("prepare_model", {"model": MODEL}, folders=("model",), version=2, config_keys=("base_model",),
          per_skill=False, stored=False, resources=HOST),
    Stage("parse_skill", {"skill.json": PARSED_SKILL}, version=2,
          check_keys=("strict", "synthesize.generator.max_new_tokens", "synthesize.teacher.max_new_tokens",
                      "synthesize.teacher_examples"),
          upstream=("prepare_model",), stored=False),
    Stage("synthesize", {"records.jsonl": SYNTHETIC, "usage.json": USAGE}, version=8,
          config_keys=("synthesize", "seed", "dataset.copy_ngram_words", "dataset.max_shape_share"),
          upstream=("parse_skill", "prepare_model"), unkeyed_outputs=("usage.json",), resources=INFERENCE),
    Stage("dataset", {"records.jsonl": DATASET, "report.json": DATASET_REPORT}, version=3,
          config_keys=("dataset.max_seq_len", "dataset.copy_ngram_words", "dataset.max_shape_share"),
          check_keys=("dataset.min_train_records", "dataset.min_eval_records"),
          upstream=("synthesize", "parse_skill", "prepare_model"), unkeyed_outputs=("report.json",)),
    Stage("train", {"adapter": ADAPTER, "metrics.jsonl": METRICS}, folders=("adapter",), version=2,
          config_keys=("lora", "training", "seed"), upstream=("dataset", "parse_skill", "prepare_model"),
          unkeyed_outputs=("metrics.jsonl",), resources=TRAINING),
    Stage("evaluate", {"report.json": EVAL_REPORT, "report.md": EVAL_MARKDOWN}, version=3, config_keys=EVAL_KEYS,
          upstream=("train", "dataset", "parse_skill", "prepare_model"), resources=INFERENCE),
    # With merge.enabled.
    Stage("merge", {"model": MERGED}, folders=("model",), upstream=("train", "prepare_model"), stored=False,
          resources=HOST, in_chain=False),
    # On request (snakemake build/serve): every adapter for llama.cpp's server, converted in seconds.
    Stage("prepare_serving", {"serve": SERVING}, folders=("serve",), upstream=("prepare_model",),
          other_skills=("parse_skill", "train"), per_skill=False, stored=False, resources=HOST, in_chain=False),
    # With evaluate.controls: one adapter on every skill's data, and the controls on each skill's prompts.
    Stage("train_shared", {"adapter": SHARED_ADAPTER, "metrics.jsonl": SHARED_METRICS}, folders=("adapter",),
          version=2, config_keys=("lora", "training", "seed"), upstream=("prepare_model",),
          other_skills=("dataset",), per_skill=False, unkeyed_outputs=("metrics.jsonl",), resources=TRAINING,
          in_chain=False),
    Stage("evaluate_controls", {"report.json": CONTROLS_REPORT}, config_keys=EVAL_KEYS,
          upstream=("evaluate", "dataset", "parse_skill", "prepare_model", "train_shared"),
          other_skills=("train",), resources=INFERENCE, in_chain=False),
    Stage("benchmark", {"benchmark.json": BENCHMARK_JSON, "benchmark.md": BENCHMARK_MARKDOWN,
                        "benchmark.png": BENCHMARK_PLOT}, version=3, config_keys=("evaluate.controls",),
          other_skills=("evaluate", "evaluate_controls"), facts_from=("synthesize",), per_skill=False,
          in_chain=False),
)}
SKILL_STAGES = tuple(name for name, stage in STAGES.items() if stage.per_skill and stage.in_chain)
CHAIN_STAGES = tuple(name for name, stage in STAGES.items() if stage.in_chain)
BUILD_STAGES = tuple(name for name, stage in STAGES.items() if not stage.per_skill)


def spec_path(stage: str, skill: str | None = None) -> Path:
    return SPECS_DIR / f"{stage}.json" if skill is None else SPECS_DIR / skill / f"{stage}.json"


def manifest_path(stage: str, skill: str | None = None) -> Path:
    return MANIFESTS_DIR / f"{stage}.json" if skill is None else MANIFESTS_DIR / skill / f"{stage}.json"
