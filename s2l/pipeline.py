"""The build's stages, one declaration each: what a stage is called, its version, the settings that
key it, the stages it reads, whether the store keeps it, what it asks a scheduler for, and where its
log and timing go. Specs and plan keys (s2l/specs.py), the store's use (s2l/runner.py, the CLI),
``s2l status`` and the benchmarks read these; the rules (rules/*.smk) stay the graph users read, and
tests/test_pipeline.py checks that their inputs and these declarations agree.

Stage names are the rule names, everywhere: specs, manifests, store folders, logs, ``s2l status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# What a stage asks a scheduler for: the base model for inference or training (with the configured
# GPUs), the base model's weights in host memory only (converting, merging), or little.
INFERENCE, TRAINING, HOST, LIGHT = "inference", "training", "host", "light"


@dataclass(frozen=True)
class Stage:
    name: str
    # Bump when the stage's code changes what it produces; that reruns it for every skill.
    version: int
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

    def log(self, skill: str = "{skill}") -> str:
        return f"build/logs/{self.name}.log" if not self.per_skill else f"build/logs/{self.name}/{skill}.log"

    def benchmark(self, skill: str = "{skill}") -> str:
        """The file of Snakemake's ``benchmark:`` directive (seconds, peak memory)."""
        return (f"build/benchmarks/{self.name}.tsv" if not self.per_skill
                else f"build/benchmarks/{self.name}/{skill}.tsv")


# What the evaluation conditions depend on; ``eval.controls`` only says which conditions run.
EVAL_KEYS = ("eval.max_new_tokens", "eval.batch_size", "eval.samples", "eval.temperature", "eval.top_p",
             "eval.judge", "seed")
# Only a skill without checks has its teacher answers graded by the judge: only its synthesize key holds it.
JUDGE_KEYS = ("eval.judge",)

STAGES = {stage.name: stage for stage in (
    Stage("prepare_model", 2, ("base_model",), per_skill=False, stored=False, resources=HOST),
    Stage("parse_skill", 2, check_keys=("strict", "generation.generator.max_new_tokens",
                                        "generation.teacher.max_new_tokens", "generation.teacher_examples"),
          upstream=("prepare_model",), stored=False),
    Stage("synthesize", 6, ("generation", "seed", "dataset.copy_ngram_words", "dataset.max_shape_share"),
          upstream=("parse_skill", "prepare_model"), unkeyed_outputs=("usage.json",), resources=INFERENCE),
    Stage("dataset", 3, ("dataset.max_seq_len", "dataset.copy_ngram_words", "dataset.max_shape_share"),
          ("dataset.min_train_records", "dataset.min_eval_records"),
          upstream=("synthesize", "parse_skill", "prepare_model"), unkeyed_outputs=("report.json",)),
    Stage("train", 2, ("lora", "training", "seed"), upstream=("dataset", "parse_skill", "prepare_model"),
          unkeyed_outputs=("metrics.jsonl",), resources=TRAINING),
    Stage("evaluate", 3, EVAL_KEYS, upstream=("train", "dataset", "parse_skill", "prepare_model"),
          resources=INFERENCE),
    # With export.merged.
    Stage("merge", 1, upstream=("train", "prepare_model"), stored=False, resources=HOST, in_chain=False),
    # With eval.controls: one adapter on every skill's data, and the controls on each skill's prompts.
    Stage("train_shared", 2, ("lora", "training", "seed"), upstream=("prepare_model",), other_skills=("dataset",),
          per_skill=False, unkeyed_outputs=("metrics.jsonl",), resources=TRAINING, in_chain=False),
    Stage("evaluate_controls", 1, EVAL_KEYS, upstream=("evaluate", "dataset", "parse_skill", "prepare_model",
                                                       "train_shared"),
          other_skills=("train",), resources=INFERENCE, in_chain=False),
    Stage("benchmark", 3, ("eval.controls",), other_skills=("evaluate", "evaluate_controls"),
          facts_from=("synthesize",), per_skill=False, in_chain=False),
)}
SKILL_STAGES = tuple(name for name, stage in STAGES.items() if stage.per_skill and stage.in_chain)
CHAIN_STAGES = tuple(name for name, stage in STAGES.items() if stage.in_chain)
BUILD_STAGES = tuple(name for name, stage in STAGES.items() if not stage.per_skill)

SPECS_DIR = Path("build/specs")
MANIFESTS_DIR = Path("build/manifests")


def spec_path(stage: str, skill: str | None = None) -> Path:
    return SPECS_DIR / f"{stage}.json" if skill is None else SPECS_DIR / skill / f"{stage}.json"


def manifest_path(stage: str, skill: str | None = None) -> Path:
    return MANIFESTS_DIR / f"{stage}.json" if skill is None else MANIFESTS_DIR / skill / f"{stage}.json"
