"""Every script under benchmarks/ runs here in a tiny mode (a few requests, steps or skills), so a
change that breaks one fails the suite instead of rotting until someone reruns it. A tiny run proves
the script works end to end and writes what it should; its figures mean nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from workflow_helpers import BENCHMARKS, ROOT, run_script

from s2l.engine.pipeline import CHAIN_STAGES, MODEL

TINY_RUNS = {"rebuild_overhead.py", "foreign_table.py", "readme_tables.py", "stage_times.py", "sweep.py",
             "engine_throughput.py", "routing.py", "serve_load.py",
             "train_throughput.py", "endpoint_throughput.py"}


def test_every_benchmark_script_has_a_tiny_run_here() -> None:
    assert {path.name for path in BENCHMARKS.glob("*.py")} == TINY_RUNS


def test_foreign_table_makes_a_row_per_result(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    shutil.copy(BENCHMARKS / "results" / "foreign" / "perkzen-branch-naming.json", tmp_path / "foreign")
    printed = run_script("foreign_table.py", "--results", tmp_path)
    table = (tmp_path / "foreign.md").read_text().splitlines()
    assert printed.splitlines() == table
    assert len(table) == 3 and table[2].startswith("| `perkzen-branch-naming` |")


def test_readme_tables_print_from_the_results_files() -> None:
    printed = run_script("readme_tables.py")
    for skill in ("conventional-commits", "google-docstrings", "keep-a-changelog"):
        assert f"| {skill} |" in printed


@pytest.mark.workflow
def test_rebuild_overhead_times_a_no_op_of_both_workflows(tmp_path: Path) -> None:
    """The script stops unless both workflows, laid down as finished, have nothing to do: every
    declared output must be there, or the s2l workflow would schedule a job."""
    run_script("rebuild_overhead.py", "--sizes", "2", "--repeats", "1", "--json", tmp_path / "overhead.json")
    rows = json.loads((tmp_path / "overhead.json").read_text())["rows"]
    assert [row["skills"] for row in rows] == [2]
    assert all(value > 0 for value in rows[0].values())


@pytest.mark.workflow
def test_stage_times_times_every_stage_of_the_chain(quick_build: tuple[Path, dict]) -> None:
    _, figures = quick_build
    row = figures["skills"]["conventional-commits"]
    assert set(row["stages"]) == set(CHAIN_STAGES)
    assert row["chain_seconds"] == pytest.approx(sum(stage["seconds"] for stage in row["stages"].values()))
    assert figures["failed"] == {}


@pytest.mark.workflow
def test_sweep_runs_both_parts_on_a_build(quick_build: tuple[Path, dict], tmp_path: Path) -> None:
    workdir, _ = quick_build
    run_script("sweep.py", "--teacher", "--training", workdir, "--skills", "conventional-commits",
               "--requests", "2", "--shown", "0", "--epochs", "1", "--learning-rates", "1e-3",
               "--configfile", ROOT / "tests" / "quick.yaml", "--json", tmp_path / "sweep.json")
    results = json.loads((tmp_path / "sweep.json").read_text())
    assert [(row["teacher_examples"], row["requests"]) for row in results["teacher"]] == [(0, 2)]
    assert [(row["epochs"], row["learning_rate"], row["steps"]) for row in results["training"]] == [(1, 1e-3, 2)]


@pytest.mark.workflow
def test_train_throughput_compares_both_trainers_on_a_build(quick_build: tuple[Path, dict], tmp_path: Path) -> None:
    workdir, _ = quick_build
    assert (workdir / MODEL).is_dir()
    run_script("train_throughput.py", "--workdir", workdir, "--steps", "1", "--repeats", "1",
               "--json", tmp_path / "throughput.json")
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert [run["trainer"] for run in result["runs"]] == ["plain", "s2l"]
    assert result["speedup"] > 0


@pytest.mark.workflow
def test_endpoint_throughput_measures_both_backends(tmp_path: Path) -> None:
    run_script("endpoint_throughput.py", "--requests", "2", "--max-new-tokens", "4", "--json", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert [row["max_concurrency"] for row in result["endpoint"]] == [1, 4, 16]
    assert [row["batch_size"] for row in result["local"]] == [16, 1]


@pytest.mark.workflow
def test_engine_throughput_measures_both_engines_on_the_same_prompts(tmp_path: Path) -> None:
    run_script("engine_throughput.py", "--requests", "2", "--max-new-tokens", "8", "--json", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert [row["engine"] for row in result["engines"]] == ["transformers", "llama.cpp, no flash attention",
                                                            "llama.cpp"]
    assert all(row["answers"] == 2 and row["completion_tokens"] > 0 for row in result["engines"])
    assert result["tokens_per_second_ratio"] > 0 and result["flash_attention_ratio"] > 0


def test_routing_scores_every_request_set_and_threshold(tmp_path: Path) -> None:
    printed = run_script("routing.py", "--json", tmp_path / "routing.json")
    result = json.loads((tmp_path / "routing.json").read_text())
    assert result["served"] == ["conventional-commits", "google-docstrings", "keep-a-changelog",
                                "andeeplus-gherkin", "perkzen-branch-naming"]
    assert [row["threshold"] for row in result["sweep"]][0] == 0.0
    assert result["sweep"][0]["false_triggers"] == 1.0  # at threshold 0 every request goes to some skill
    assert "| asked for |" in printed


@pytest.mark.workflow
def test_serve_load_measures_every_setting(tmp_path: Path, serving_folder: Path) -> None:
    run_script("serve_load.py", "--serve", serving_folder, "--requests", "2", "--concurrency", "2",
               "--max-tokens", "4", "--json", tmp_path / "load.json")
    rows = json.loads((tmp_path / "load.json").read_text())["rows"]
    assert [row["setting"] for row in rows] == ["one adapter (conventional-commits)", "all adapters in turn",
                                                "no adapter (base)", "auto (routed)"]
    assert all(row["requests"] == 2 and row["p95_seconds"] >= row["p50_seconds"] > 0 for row in rows)
