"""The package's layers (README "Layout"): each layer imports only the layers below it, the build
engine loads no torch, and nothing in a layer reaches up to the command line or the stages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "s2l"
# Bottom to top; errors and schemas sit beneath every layer, cli and stages above them all.
LAYERS = ("skills", "engine", "models", "data", "training", "reports")
SHARED = {"errors", "schemas"}


def s2l_imports(module: Path) -> set[str]:
    """The s2l subpackages or top-level modules ``module`` imports, lazily or not."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "s2l" and len(parts) > 1:
                found.add(parts[1])
            elif parts == ["s2l"] and isinstance(node, ast.ImportFrom):
                found.update(alias.name for alias in node.names)
    return found


def test_every_module_sits_in_a_layer() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", "cli", "stages", "errors"}, "a new module belongs in a layer"
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").is_file()} == {
        *LAYERS, "schemas"}


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for rank, layer in enumerate(LAYERS):
        allowed = {*LAYERS[: rank + 1], *SHARED}
        for module in sorted((PACKAGE / layer).glob("*.py")):
            wrong += [f"s2l/{layer}/{module.name} imports s2l.{name}"
                      for name in sorted(s2l_imports(module) - allowed)]
    assert wrong == []


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from s2l.engine.plan import build_plan\n\ndef f():\n    from s2l.reports import report\n"
                      "    import s2l.stages\n")
    assert s2l_imports(module) == {"engine", "reports", "stages"}


def modules_loading(names: list[str], heavy: tuple[str, ...] = ("torch", "transformers", "peft")) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``names``."""
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))")
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_build_engine_loads_no_torch() -> None:
    """Snakemake parses the workflow at every run and in every cluster job: the modules it imports to
    plan a build must not pull in torch (seconds each time)."""
    modules = sorted(f"s2l.engine.{path.stem}" for path in (PACKAGE / "engine").glob("*.py"))
    assert len(modules) >= 10
    assert modules_loading(modules) == []


def test_a_job_loads_torch_only_where_a_model_runs() -> None:
    """Every job starts with ``python -m s2l``: one that parses a skill, checks a dataset, writes the
    benchmark or restores from the store needs no torch (1.5 s a job), so only the modules that run a
    model load it when imported; the others import it inside the functions that need it."""
    runs_a_model = {"s2l.models.generation", "s2l.models.scoring"}
    modules = sorted(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
                     for path in PACKAGE.rglob("*.py") if path.stem != "__main__")
    light = [name for name in modules if name not in runs_a_model]
    assert {"s2l.cli", "s2l.stages", "s2l.data.form", "s2l.data.cost", "s2l.reports.report"} <= set(light)
    assert modules_loading(light) == []
    assert modules_loading(sorted(runs_a_model), ("torch",)) == ["torch"]  # the check can see torch
