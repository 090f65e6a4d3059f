"""The workflow configuration: defaults in config.yaml, merged overrides, validation.

``snakemake --config strict=true`` hands over the string ``"true"`` (Snakemake reads only ``True``
and ``False`` as booleans), and ``--config 'lora={r: 8}'`` the string ``"8"`` (Snakemake reads a nested
value with YAML's BaseLoader, which makes every scalar a string), so a string that spells what the
schema asks for (a boolean, an integer, a number) is read as one before the schema is checked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from s2l.engine.source import PACKAGE_PREFIX
from s2l.errors import UserError
from s2l.schemas import load_schema, validate

# Package data; the config.yaml beside the Snakefile links to it.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
CONFIG_SCHEMA = "config.schema.yaml"
# Roles that may use an endpoint: name -> where the config holds its settings.
ROLE_PATHS = {"generator": "synthesize.generator", "teacher": "synthesize.teacher", "judge": "evaluate.judge"}
ENDPOINT_ROLES = ("generator", "teacher")  # the roles that make the data
# Keys renamed so that each stage has one name (its rule, its rules/ file, its config section):
# old path -> new path. A config that still uses an old one is read, with a warning.
RENAMED_KEYS = {("generation",): ("synthesize",), ("eval",): ("evaluate",),
                ("export", "merged"): ("merge", "enabled"), ("cache_dir",): ("store_dir",)}
Settings = TypeVar("Settings")
BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                 "0": False}


def coerce_scalars(value: Any, rule: dict[str, Any], root: dict[str, Any]) -> Any:
    """``value`` with each string that spells what ``rule`` (a part of the JSON Schema ``root``) asks
    for, a boolean (``"true"``, ``"off"``, ...), an integer or a number, turned into one; the rest is
    left for the schema to refuse."""
    if "$ref" in rule:  # this schema's references are all "#/$defs/<name>"
        return coerce_scalars(value, root["$defs"][rule["$ref"].rsplit("/", 1)[-1]], root)
    if isinstance(value, dict):
        objects = [alternative for alternative in rule.get("oneOf", []) if "$ref" in alternative
                   or alternative.get("type") == "object"]
        if objects:
            return coerce_scalars(value, objects[0], root)
    kind = rule.get("type")
    if isinstance(value, dict) and kind == "object":
        properties = rule.get("properties", {})
        return {name: coerce_scalars(item, properties.get(name, {}), root) for name, item in value.items()}
    if isinstance(value, list) and kind == "array":
        return [coerce_scalars(item, rule.get("items", {}), root) for item in value]
    if not isinstance(value, str):
        return value
    if kind == "boolean":
        return BOOLEAN_WORDS.get(value.lower(), value)
    for wanted, parse in (("integer", int), ("number", int), ("number", float)):
        if kind == wanted:
            with contextlib.suppress(ValueError):
                return parse(value)
    return value


def renamed(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with each key of an old name (``RENAMED_KEYS``) moved to its new one, merged over
    what the new one holds (the defaults sit there), and a warning on stderr per key."""
    config = dict(config)
    for old, new in RENAMED_KEYS.items():
        nested = len(old) == 2
        holder = config.get(old[0]) if nested else config
        if not isinstance(holder, dict) or old[-1] not in holder:
            continue
        if nested:
            holder = config[old[0]] = dict(holder)  # a copy: the caller's section stays whole
        value = holder.pop(old[-1])
        if nested:
            if not holder:
                del config[old[0]]
            value = {new[1]: value}
        current = config.get(new[0])
        config[new[0]] = merge_config(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
        print(f"warning: config key {'.'.join(old)} is now {'.'.join(new)}; read as {'.'.join(new)} "
              f"(rename it: the old name will stop working)", file=sys.stderr)
    return config


def local_engine(engine: str, source: str, key: str = "synthesize.engine") -> str:
    """The engine config entry ``key`` names for a base model from ``source``, ``auto`` resolved:
    llama.cpp where the source is a GGUF file and llama-cpp-python is installed, else transformers."""
    gguf = source.startswith(PACKAGE_PREFIX) or source.endswith(".gguf")
    installed = importlib.util.find_spec("llama_cpp") is not None
    if engine == "auto":
        return "llama.cpp" if gguf and installed else "transformers"
    if engine == "llama.cpp" and not gguf:
        raise UserError(f"{key} llama.cpp: base_model.source {source!r} is not a GGUF file "
                        "(llama.cpp runs GGUF models; use engine: transformers for a model folder)")
    if engine == "llama.cpp" and not installed:
        raise UserError(f"{key} llama.cpp: llama-cpp-python is not installed (make setup installs it; "
                        "or use engine: transformers)")
    return engine


def validated(config: dict[str, Any]) -> dict[str, Any]:
    """The config with old key names moved to their new ones, spelled-out scalars read and the local
    engine resolved (the build's keys name the engine that runs); raises SchemaError naming the key at fault."""
    schema = load_schema(CONFIG_SCHEMA)
    config = coerce_scalars(renamed(config), schema, schema)
    validate(config, CONFIG_SCHEMA)
    for section in ("synthesize", "evaluate"):
        config[section]["engine"] = local_engine(config[section]["engine"], config["base_model"]["source"],
                                                 f"{section}.engine")
    return config


def api_key_from_env(variable: str, where: str) -> str:
    """The API key in environment variable ``variable``; ``where`` is the config entry that names it.
    Keys live only in the environment: the config holds the variable's name, never its value."""
    key = os.environ.get(variable)
    if not key:
        raise UserError(f"{where}.connection.api_key_env: environment variable {variable} is not set "
                        f"(export {variable}=... before running the build)")
    return key


def check_api_keys(config: dict[str, Any]) -> None:
    """Fail before any job runs when a role's endpoint key variable is unset."""
    for dotted in ROLE_PATHS.values():
        section, role = dotted.split(".")
        settings = config[section].get(role) or {}
        variable = settings.get("connection", {}).get("api_key_env")
        if settings.get("backend") == "openai" and variable:
            api_key_from_env(variable, dotted)


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dictionaries merge key by key, as Snakemake merges --configfile files."""
    merged = dict(base)
    for name, value in override.items():
        merged[name] = merge_config(merged[name], value) if isinstance(value, dict) and isinstance(
            merged.get(name), dict) else value
    return merged


def workflow_config(where: Path) -> Path:
    """The config.yaml that ``snakemake`` run in ``where`` reads first: the one beside its Snakefile (a
    copied or edited tree's own), or else the one that ships with s2l."""
    return where / "config.yaml" if (where / "Snakefile").is_file() and (where / "config.yaml").is_file() \
        else DEFAULT_CONFIG


def load_config(configfiles: list[Path], where: Path = Path(".")) -> dict[str, Any]:
    """The config a build run in ``where`` with ``--configfile configfiles`` uses, validated."""
    config = yaml.safe_load(workflow_config(where).read_text(encoding="utf-8"))
    for path in configfiles:
        config = merge_config(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return validated(config)


@cache
def _default_config_text() -> str:
    return DEFAULT_CONFIG.read_text(encoding="utf-8")


def default_config() -> dict[str, Any]:
    """config.yaml as shipped, validated: the one place every setting's default is written (the
    settings classes hold none)."""
    return validated(yaml.safe_load(_default_config_text()))


def section_settings(cls: type[Settings], section: dict[str, Any]) -> Settings:
    """A settings class from its config section, each field from the key of its name; keys the class
    does not hold (``evaluate.controls``, ``evaluate.judge``) belong to other parts of the build."""
    return cls(**{field.name: section[field.name] for field in fields(cls)})
