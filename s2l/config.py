"""The workflow configuration: defaults in config.yaml, merged overrides, validation.

``snakemake --config strict=true`` hands over the string ``"true"`` (Snakemake reads only ``True``
and ``False`` as booleans), so string spellings of booleans are accepted wherever the schema asks
for a boolean, before the schema is checked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from s2l.errors import UserError
from s2l.schemas import SCHEMA_DIR, load_schema, validate

DEFAULT_CONFIG = SCHEMA_DIR.parent / "config.yaml"
CONFIG_SCHEMA = "config.schema.yaml"
# Roles that may use an endpoint: name -> where the config holds its settings.
ROLE_PATHS = {"generator": "generation.generator", "teacher": "generation.teacher", "judge": "eval.judge"}
ENDPOINT_ROLES = ("generator", "teacher")  # the roles that make the data
BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                 "0": False}


def coerce_booleans(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``"true"`` / ``"False"`` / ... turned into booleans where ``schema`` wants one."""
    coerced = dict(config)
    for name, rule in schema.get("properties", {}).items():
        value = coerced.get(name)
        if rule.get("type") == "boolean" and isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
            coerced[name] = BOOLEAN_WORDS[value.lower()]
        elif rule.get("type") == "object" and isinstance(value, dict):
            coerced[name] = coerce_booleans(value, rule)
    return coerced


def validated(config: dict[str, Any]) -> dict[str, Any]:
    """The config with booleans coerced; raises SchemaError naming the key at fault."""
    config = coerce_booleans(config, load_schema(CONFIG_SCHEMA))
    validate(config, CONFIG_SCHEMA)
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


def load_config(configfiles: list[Path]) -> dict[str, Any]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for path in configfiles:
        config = merge_config(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return validated(config)
