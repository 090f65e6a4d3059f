"""The JSON Schemas beside this file (package data): one loader and one validator for every artefact."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from s2l.errors import UserError

SCHEMA_DIR = Path(__file__).resolve().parent


class SchemaError(UserError):
    """An instance that does not match its schema; ``location`` is a JSON path like $.evals[0]."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}")


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    return yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else json.loads(text)


@cache
def _registry() -> Registry:
    """Every schema under its file name, so one schema can $ref another ("x.schema.json#/$defs/y")."""
    return Registry().with_resources(
        (path.name, Resource.from_contents(load_schema(path.name), default_specification=DRAFT202012))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
    )


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    return jsonschema.validators.validator_for(schema)(schema, registry=_registry())


def validate(instance: Any, name: str) -> None:
    """Raise SchemaError for the first (most relevant) violation of schema ``name``."""
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is not None:
        raise SchemaError(error.json_path, error.message)
