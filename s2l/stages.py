"""The build stages, one function each, as the Snakemake rules run them through ``s2l <stage>``.

Each reads its settings from its spec, hands its build to ``run_stage`` (which restores from the
store or builds, then writes the manifest) and writes its outputs. Stage names are the rule names.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from s2l.data.dataset import DatasetSettings
from s2l.engine.config import section_settings
from s2l.engine.pipeline import USAGE_SUFFIX
from s2l.engine.runner import StageRun, input_key, read_upstream, run_stage
from s2l.engine.source import ModelSourceError, resolve_source
from s2l.engine.specs import read_spec, software_versions
from s2l.errors import UserError
from s2l.skills.skill import Skill, SkillError, load_skill, read_parsed_skill, skill_sha256

# Where the request cache lives when a stage is run by hand without --store-dir.
DEFAULT_STORE_DIR = Path(".s2l-cache")


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


def report_warnings(skill_key: str, warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: skill {skill_key}: {warning}", file=sys.stderr)


def base_model_provenance(model_dir: Path) -> dict[str, Any]:
    from s2l.models.model import read_manifest

    manifest = read_manifest(model_dir)
    return {"model_id": manifest["model_id"], "source_sha256": manifest["source_sha256"], "path": str(model_dir)}


def prepare_model(run: StageRun, out: Path) -> None:
    def build(spec: dict[str, Any]) -> None:
        from s2l.engine.plan import MODEL_SOURCE_MEMO
        from s2l.engine.source import source_sha256
        from s2l.models.model import prepare_base_model

        settings = spec["config"]["base_model"]
        now = source_sha256(settings["source"], MODEL_SOURCE_MEMO)
        if now != spec["model_sha256"]:
            raise ModelSourceError(
                f"base_model.source {settings['source']!r}: its files changed since the build was planned; "
                f"rerun the build (snakemake)")
        manifest = prepare_base_model(settings["source"], settings["id"], out, spec["model_sha256"])
        print(f"prepared {manifest['model_id']} ({manifest['parameters']:,} parameters) in {out}")

    run_stage(run, build)


def check_fits_context(skill: Skill, model: Path, request_tokens: int, answer_tokens: int, examples: int) -> None:
    """Refuse a skill whose teacher prompt, with a request and an answer, overflows the base model's context."""
    from s2l.data.synthetic import teacher_prompt_tokens
    from s2l.models.model import context_length, load_tokenizer

    limit = context_length(model)
    prompt = teacher_prompt_tokens(skill, load_tokenizer(model), examples)
    needed = prompt + request_tokens + answer_tokens
    if needed > limit:
        raise SkillError(
            skill.path, "length",
            f"skill {skill.key!r} needs {needed:,} tokens: a teacher prompt of {prompt:,} tokens (SKILL.md and its "
            f"worked examples) with the base model's tokenizer, plus a {request_tokens}-token request and a {answer_tokens}-token answer; the "
            f"base model's context is {limit:,} tokens. Shorten SKILL.md, or use a base model with a longer context")


def parse_skill(run: StageRun, model: Path, out: Path) -> None:
    def build(spec: dict[str, Any]) -> None:
        folder, planned = Path(spec["inputs"]["dir"]), spec["skill"]["sha256"]
        changed = SkillError(folder / "SKILL.md", "content", "changed since the build was planned; rerun the build "
                             "(snakemake) so every stage reads the same text")
        if skill_sha256(folder) != planned:
            raise changed
        checks = spec["checks"]
        skill = load_skill(folder, strict=checks["strict"])
        if skill.sha256 != planned:  # edited while it was being read
            raise changed
        report_warnings(skill.key, skill.warnings)
        synthesis = checks["synthesize"]
        check_fits_context(skill, model, synthesis["generator"]["max_new_tokens"],
                           synthesis["teacher"]["max_new_tokens"], synthesis["teacher_examples"])
        write_json(out, skill.to_json())

    run_stage(run, build)


def check_skills(folders: list[Path], strict: bool, config: dict[str, Any], model: Path | None = None) -> bool:
    """Validate every folder and say what a build will make of it (s2l/data/readiness.py); True when all of
    them passed. With ``model`` (the prepared base model) a skill too long for its context is refused,
    as parse_skill refuses it; without, the output says the length was not checked."""
    from s2l.data.readiness import readiness

    synthesis = config["synthesize"]
    passed = True
    for folder in folders:
        try:
            skill = load_skill(folder, strict=strict)
            if model is not None:
                check_fits_context(skill, model, synthesis["generator"]["max_new_tokens"],
                                   synthesis["teacher"]["max_new_tokens"], synthesis["teacher_examples"])
        except SkillError as error:
            print(f"error: {error}", file=sys.stderr)
            passed = False
            continue
        report_warnings(skill.key, skill.warnings)
        lines, verdict = readiness(skill, synthesis, config["evaluate"]["judge"])
        print(f"ok: {folder} ({len(skill.evals)} evals, {len(skill.warnings)} warnings)")
        for line in lines:
            print(f"  {line}")
        if model is None:
            print("  context: not checked (no prepared base model; `snakemake build/models/base` prepares it)")
        print(f"  {verdict}")
    return passed


def endpoint_backend(name: str, settings: dict[str, Any], spec: dict[str, Any], store_dir: Path):
    """The OpenAI-compatible backend of role ``name`` (a key of ROLE_PATHS), through the request cache."""
    from s2l.engine.config import ROLE_PATHS
    from s2l.models.endpoint import Connection, OpenAIBackend
    from s2l.models.request_cache import RequestCache

    connection = Connection(**spec.get("connections", {}).get(name, {}))
    return OpenAIBackend(settings["base_url"], settings["model"], connection, RequestCache(store_dir),
                         where=ROLE_PATHS[name])


def role_price(spec: dict[str, Any], name: str) -> dict[str, float] | None:
    return spec.get("connections", {}).get(name, {}).get("price_per_million_tokens")


def role_backends(spec: dict[str, Any], model: Path, store_dir: Path, threads: int) -> dict[str, tuple[Any, Any]]:
    """(backend, Role) for the generator and the teacher, each its own backend so each is accounted
    for apart; local roles share one loaded model on the configured engine, loaded only if some role is local."""
    from s2l.data.synthetic import Role
    from s2l.engine.config import ENDPOINT_ROLES

    synthesis = spec["config"]["synthesize"]
    local = None
    backends = {}
    for name in ENDPOINT_ROLES:
        settings = synthesis[name]
        if settings["backend"] == "openai":
            backend = endpoint_backend(name, settings, spec, store_dir)
            role = Role(**settings)
        else:
            if local is None:
                local = local_model(synthesis["engine"], model, threads)
            backend = local[0](synthesis["batch_size"])
            role = Role(**{**settings, "model": local[1]})
        backends[name] = backend, role
    return backends


def local_model(engine: str, model: Path, threads: int) -> tuple[Callable[[int], Any], str]:
    """(a backend for a batch size, the model id) on ``engine``: each role gets its own backend (its
    own usage), all on the one model loaded here."""
    from s2l.models.model import load_tokenizer, read_manifest

    manifest = read_manifest(model)
    tokenizer = load_tokenizer(model)
    if engine == "llama.cpp":
        return llama_model(model, tokenizer, threads).backend, manifest["model_id"]
    from s2l.models.generation import LocalBackend
    from s2l.models.model import load_model

    weights = load_model(model)
    return (lambda batch_size: LocalBackend(weights, tokenizer, manifest["model_id"], batch_size)), manifest["model_id"]


def llama_model(model: Path, tokenizer, threads: int):
    """The prepared base model's GGUF file on llama.cpp: the file where it is now (a model restored
    from the store names where it was when prepared)."""
    from s2l.models.llamacpp import LlamaCppModel
    from s2l.models.model import read_manifest

    manifest = read_manifest(model)
    return LlamaCppModel(resolve_source(manifest["source"]).weights, tokenizer, manifest["model_id"], threads)


def eval_answerer(engine: str, model: Path, loaded, tokenizer, adapters: dict[str, Path], batch_size: int,
                  threads: int, scratch: Path):
    """What writes an evaluation's answers on ``engine``: the PeftModel ``loaded`` itself, or llama.cpp
    with each of ``adapters`` written into ``scratch`` as a GGUF LoRA, active for its own conditions."""
    from s2l.reports.evaluate import torch_answerer

    if engine == "transformers":
        return torch_answerer(loaded, tokenizer, batch_size)
    from s2l.models.llamacpp import write_gguf_lora

    base_config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    ggufs = {name: write_gguf_lora(path, base_config, scratch / f"{name}.gguf") for name, path in adapters.items()}
    engine_model = llama_model(model, tokenizer, threads)
    return lambda adapter: engine_model.backend(batch_size, ggufs[adapter] if adapter else None)


def synthesis_judge(spec: dict[str, Any], roles: dict[str, tuple[Any, Any]], model: Path, store_dir: Path):
    """The judge that grades the teacher's answers, where the plan gave this skill's generation one (a
    skill without checks, with ``evaluate.judge`` set); a local judge shares the roles' loaded model."""
    if not spec["config"].get("evaluate", {}).get("judge"):
        return None
    from s2l.models.generation import LocalBackend

    local = next((backend for backend, _ in roles.values() if isinstance(backend, LocalBackend)), None)
    if local is not None:
        return judge_for(spec, local.model, local.tokenizer, model, store_dir)
    if spec["config"]["evaluate"]["judge"]["backend"] == "local":
        from s2l.models.model import load_model, load_tokenizer

        return judge_for(spec, load_model(model), load_tokenizer(model), model, store_dir)
    return judge_for(spec, None, None, model, store_dir)


def synthesize(run: StageRun, skill_file: Path, model: Path, out: Path, usage_file: Path, threads: int) -> None:
    def build(spec: dict[str, Any]) -> None:
        from s2l.data.synthetic import SeedSearch, TeacherSettings
        from s2l.data.synthetic import synthesize as synthesize_records

        set_threads(threads)
        settings = spec["config"]
        synthesis, seed = settings["synthesize"], settings["seed"]
        skill = read_parsed_skill(skill_file)
        store_dir = run.store_dir or DEFAULT_STORE_DIR
        roles = role_backends(spec, model, store_dir, threads)
        judge = synthesis_judge(spec, roles, model, store_dir)
        if not skill.checks and judge is None:
            print(f"warning: skill {skill.key}: no machine checks in evals/evals.json and no judge (evaluate.judge): the "
                  f"teacher's answers are kept unfiltered. Add checks to evals/evals.json, or configure evaluate.judge, "
                  f"to keep only answers that follow the skill", file=sys.stderr)
        records = synthesize_records(
            skill,
            generator=roles["generator"],
            teacher=roles["teacher"],
            train_examples=synthesis["train_examples"],
            eval_examples=synthesis["eval_examples"],
            seed=seed,
            settings=TeacherSettings.from_config(settings),
            search=SeedSearch.from_config(settings),
            judge=judge,
        )
        count = write_jsonl(out, records)
        usage = {name: {"backend": role.backend, "model": role.model,
                        **({"engine": synthesis["engine"]} if role.backend == "local" else {}),
                        **backend.usage.summary(role_price(spec, name))}
                 for name, (backend, role) in roles.items()}
        if judge is not None:
            usage["judge"] = {"backend": judge.backend_name, "model": judge.backend.model_id,
                              **judge.backend.usage.summary(judge.price)}
        write_json(usage_file, usage)
        print(f"{skill.key}: wrote {count} synthetic records to {out}; "
              + "; ".join(f"{name}: {u['sent']} requests sent, {u['cache_hits']} from the request cache"
                          for name, u in usage.items()))

    run_stage(run, build)


def dataset(run: StageRun, skill_file: Path, synthetic: Path, usage_file: Path, model: Path, out: Path,
            report_file: Path) -> None:
    def build(spec: dict[str, Any]) -> None:
        from s2l.data.dataset import build_dataset
        from s2l.models.model import load_tokenizer

        settings = section_settings(DatasetSettings, {**spec["config"]["dataset"], **spec["checks"]["dataset"]})
        skill = read_parsed_skill(skill_file)
        records, report = build_dataset(read_jsonl(synthetic), skill, load_tokenizer(model), settings)
        write_jsonl(out, records)
        # How the data was made, per role: requests, tokens, retries, cache hits, wall time, cost.
        report["usage"] = json.loads(usage_file.read_text(encoding="utf-8"))
        write_json(report_file, report)
        dropped = ", ".join(f"{reason} {count}" for reason, count in report["dropped"].items()) or "none"
        print(f"{skill.key}: kept {report['kept']['train']} training and {report['kept']['eval']} held-out records of "
              f"{report['input_records']} (dropped: {dropped}); report in {report_file}")

    run_stage(run, build)


def train(run: StageRun, skill_file: Path, dataset_file: Path, model: Path, out: Path, metrics_file: Path,
          threads: int) -> None:
    skill = read_parsed_skill(skill_file)
    train_on(run, skill.identity, [dataset_file], model, out, metrics_file, threads)


def train_shared(run: StageRun, dataset_files: list[Path], model: Path, out: Path, metrics_file: Path,
                 threads: int) -> None:
    """The shared-adapter control: one adapter on the union of every skill's records (each dataset
    keeps its own train/eval split, so no skill's held-out request is trained on)."""
    skills = sorted(path.name.removesuffix(".jsonl") for path in dataset_files)
    identity = {"key": "_shared", "name": "shared: " + ", ".join(skills), "sha256": "one per skill, in its records"}
    train_on(run, identity, sorted(dataset_files), model, out, metrics_file, threads)


def train_on(run: StageRun, identity: dict[str, str], dataset_files: list[Path], model: Path, out: Path,
             metrics_file: Path, threads: int) -> None:
    from s2l.training.train import LoraSettings, TrainingRun, TrainingSettings, training_precision

    def build(spec: dict[str, Any]) -> None:
        from s2l.training.card import write_model_card
        from s2l.training.train import train_adapter

        set_threads(threads)
        base = base_model_provenance(model)
        # Checkpoints are filed under the job's input key: only a rerun of this very training resumes them.
        key = input_key(spec, read_upstream(spec), run.facts)
        where = TrainingRun(checkpoint_dir=(run.store_dir or DEFAULT_STORE_DIR) / "checkpoints" / spec["stage"] / key,
                            metrics_file=metrics_file, threads=threads)
        result = train_adapter(model, dataset_files, lora, training, spec["config"]["seed"], out, where,
                               base["model_id"])
        provenance = {
            "skill": identity,
            "base_model": base,
            "seed": spec["config"]["seed"],
            "stage": {"name": spec["stage"], "version": spec["version"], "plan_key": spec["key"]},
            "software": software_versions(),
        }
        write_model_card(out, provenance, lora, training, result)
        print(f"{identity['key']}: adapter in {out} ({result.steps} steps, final loss {result.final_loss:.4f}); "
              f"training metrics in {metrics_file}")

    settings = read_spec(run.spec_file)["config"]
    lora, training = section_settings(LoraSettings, settings["lora"]), section_settings(TrainingSettings,
                                                                                       settings["training"])
    # CPU and GPU adapters differ: the precision used is part of the input key, so they never share an entry.
    run_stage(replace(run, facts={"precision": training_precision(training).label}), build)


def merge(run: StageRun, model: Path, adapter: Path, out: Path, threads: int) -> None:
    def build(spec: dict[str, Any]) -> None:
        from s2l.models.model import merge_adapter

        set_threads(threads)
        merge_adapter(model, adapter, out)
        print(f"{spec['skill']['key']}: base model with its adapter merged in {out}")

    run_stage(run, build)


def prepare_serving(run: StageRun, skill_files: list[Path], adapters: list[Path], model: Path, out: Path) -> None:
    """build/serve: every skill's adapter ready for llama.cpp's server, its config file, and the
    skills' descriptions the ``auto`` model is routed by (s2l/models/llamacpp_server.py)."""
    def build(spec: dict[str, Any]) -> None:
        from s2l.models.llamacpp_server import SERVER_CONFIG, write_serving
        from s2l.models.model import read_manifest

        skills = [read_parsed_skill(path) for path in skill_files]
        by_key = {adapter.name: adapter for adapter in adapters}
        source = read_manifest(model)["source"]
        gguf = resolve_source(source).weights
        if gguf.suffix != ".gguf":
            raise UserError(f"base_model.source {source!r} is a model folder: llama.cpp's server runs a GGUF base "
                            f"model (convert it with llama.cpp's convert_hf_to_gguf.py), or serve the adapters with "
                            f"vLLM (README: Serving a build)")
        base_config = json.loads((model / "config.json").read_text(encoding="utf-8"))
        write_serving(out, gguf, {skill.key: by_key[skill.key] for skill in skills},
                      {skill.key: f"{skill.name}: {skill.description}" for skill in skills}, base_config)
        print(f"{len(skills)} adapters ready to serve in {out}: s2l serve {out} (or python -m llama_cpp.server "
              f"--config_file {out / SERVER_CONFIG})")

    run_stage(run, build)


def judge_for(spec: dict[str, Any], model, tokenizer, model_dir: Path, store_dir: Path):
    """The configured judge (``evaluate.judge``), or None; a local judge is the base model itself."""
    from s2l.models.backend import Sampling
    from s2l.models.generation import LocalBackend
    from s2l.models.judge import Judge

    settings = spec["config"]["evaluate"]["judge"]
    if settings is None:
        return None
    if settings["backend"] == "openai":
        backend = endpoint_backend("judge", settings, spec, store_dir)
    else:
        model_id = base_model_provenance(model_dir)["model_id"]
        # In an evaluation the eval batch size; grading the teacher's answers, the generation batch size.
        batch_size = spec["config"]["evaluate"].get("batch_size") or spec["config"]["synthesize"]["batch_size"]
        backend = LocalBackend(model, tokenizer, model_id, batch_size)
    return Judge(backend, Sampling(settings["temperature"], settings["top_p"], settings["max_new_tokens"]),
                 settings["backend"], role_price(spec, "judge"))


def evaluation(run: StageRun, skill_file: Path, dataset_file: Path, model: Path, adapters: dict[str, Path],
               threads: int, evaluate_with: Callable[..., dict[str, Any]], out: Path, markdown_file: Path | None,
               schema: str) -> None:
    """An evaluation job: the base model with ``adapters`` loaded by name, the configured judge, a
    schema-checked report (and its Markdown, for the skill's own evaluation). ``evaluate_with`` is
    called as ``(model, tokenizer, skill, records, settings, seed, judge=..., answerer=...)``."""
    def build(spec: dict[str, Any]) -> None:
        from s2l.models.model import load_model, load_tokenizer
        from s2l.reports.evaluate import EvalSettings
        from s2l.reports.report import eval_markdown, result_sentence
        from s2l.schemas import validate

        set_threads(threads)
        seed = spec["config"]["seed"]
        skill = read_parsed_skill(skill_file)
        settings = spec["config"]["evaluate"]
        loaded, tokenizer = load_model(model, adapters), load_tokenizer(model)
        judge = judge_for(spec, loaded, tokenizer, model, run.store_dir or DEFAULT_STORE_DIR)
        with tempfile.TemporaryDirectory(prefix="s2l-gguf-lora-") as scratch:
            answerer = eval_answerer(settings["engine"], model, loaded, tokenizer, adapters, settings["batch_size"],
                                     threads, Path(scratch))
            results = evaluate_with(loaded, tokenizer, skill, read_jsonl(dataset_file),
                                    section_settings(EvalSettings, settings), seed, judge=judge, answerer=answerer)
        report = {
            "skill": skill.identity,
            "base_model": base_model_provenance(model),
            "adapters": {name: str(path) for name, path in adapters.items()},
            "seed": seed,
            "plan_key": spec["key"],
            "settings": settings,
            "software": software_versions(),
            **results,
        }
        validate(report, schema)
        write_json(out, report)
        if markdown_file is not None:
            markdown_file.write_text(eval_markdown(report), encoding="utf-8")
            print(result_sentence(report, markdown_file))

    run_stage(run, build)


def evaluate(run: StageRun, skill_file: Path, dataset_file: Path, model: Path, adapter: Path, out: Path,
             markdown_file: Path, threads: int) -> None:
    from s2l.reports.evaluate import evaluate as evaluate_conditions

    evaluation(run, skill_file, dataset_file, model, {"adapter": adapter}, threads,
               partial(evaluate_conditions, adapter=adapter), out, markdown_file, "eval_report.schema.json")


def evaluate_controls(run: StageRun, skill_file: Path, dataset_file: Path, model: Path, own_report: Path,
                      shared_adapter: Path, wrong_adapter: Path | None, out: Path, threads: int) -> None:
    from s2l.reports.evaluate import evaluate_controls as evaluate_control_conditions

    adapters = {"shared_adapter": shared_adapter, **({"wrong_adapter": wrong_adapter} if wrong_adapter else {})}
    own = json.loads(own_report.read_text(encoding="utf-8"))
    evaluation(run, skill_file, dataset_file, model, adapters, threads,
               partial(evaluate_control_conditions, adapters=adapters, own_report=own), out, None,
               "controls_report.schema.json")


def benchmark(run: StageRun, reports: list[Path], controls: list[Path], usage_files: list[Path],
              out_prefix: Path) -> None:
    from s2l.engine.hashing import content_sha256

    usage_file = {path.name.removesuffix(USAGE_SUFFIX): path for path in usage_files}

    def build(spec: dict[str, Any]) -> None:
        from s2l.reports.report import markdown, plot, summarize
        from s2l.schemas import validate

        usage = {skill: json.loads(path.read_text(encoding="utf-8")) for skill, path in usage_file.items()}
        summary = summarize([json.loads(path.read_text(encoding="utf-8")) for path in reports], usage,
                            [json.loads(path.read_text(encoding="utf-8")) for path in controls])
        validate(summary, "benchmark.schema.json")
        write_json(out_prefix.with_suffix(".json"), summary)
        out_prefix.with_suffix(".md").write_text(markdown(summary), encoding="utf-8")
        plot(summary, out_prefix.with_suffix(".png"))
        print(markdown(summary))

    # What generation cost is no input of the evaluation, so no upstream key holds it: its bytes are
    # a fact of this job, and a benchmark is restored only with the usage it was built from.
    usage_keys = {skill: content_sha256(path) for skill, path in sorted(usage_file.items())}
    run_stage(replace(run, facts={"usage": usage_keys}), build)
