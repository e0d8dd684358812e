"""Reading stack config: from the engine into `PlatformConfig`, with one-line errors."""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from infra.config.base import PROJECT, ConfigError
from infra.config.platform import PlatformConfig


def parse(values: Mapping[str, Any], *, stack: str, source: str | None = None) -> PlatformConfig:
    """Validate raw stack config (`{"aws:region": ..., "ml-platform:network": {...}}`).

    Raises ConfigError with one line per problem, each naming `source`.
    """
    source = source or f"Pulumi.{stack}.yaml"
    sections: dict[str, Any] = {"stack": stack}
    problems: list[str] = []
    if "aws:region" in values:
        sections["region"] = values["aws:region"]
    for key, value in values.items():
        namespace, _, section = key.partition(":")
        if namespace != PROJECT:
            continue
        if section in ("stack", "region"):
            problems.append(f"{source}: {key}: unknown key (the stack name and aws:region set this)")
        else:
            sections[section] = value
    try:
        config = PlatformConfig.model_validate(sections)
    except ValidationError as exc:
        problems.extend(f"{source}: {_describe(err)}" for err in _one_per_mistake(exc.errors()))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def load() -> PlatformConfig:
    """Read the running stack's config from the Pulumi engine (real run or offline engine)."""
    stack = pulumi.get_stack()
    # The language host passes config in PULUMI_CONFIG; set_all_config (offline engine) overrides.
    raw = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    return parse({key: _decode(value) for key, value in raw.items()}, stack=stack)


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to programs as JSON text."""
    if isinstance(value, str) and value[:1] in "{[" or value in ("true", "false"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _one_per_mistake(errors: list[Any]) -> list[Any]:
    """A misspelt key is one mistake: drop the 'missing' error for the key it was meant to be."""
    meant = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            meant.update((err["loc"][:-1], hint) for hint in difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1))
    # A role default cannot be computed when the role itself is wrong: that is the role's error, not a second one.
    return [e for e in errors if e["type"] != "default_factory_not_called"
            and not (e["type"] == "missing" and (e["loc"][:-1], e["loc"][-1]) in meant)]


def _describe(err: Any) -> str:
    """One line for a pydantic error: key path, what is wrong, what was given."""
    loc = [str(part) for part in err["loc"]]
    if loc and loc[0] not in ("stack", "region"):
        loc[0] = f"{PROJECT}:{loc[0]}"
    elif loc and loc[0] == "region":
        loc[0] = "aws:region"
    path = ".".join(loc) or PROJECT
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        hint = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{path}: unknown key{suggestion} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        hint = "set the AWS region, e.g. us-east-1" if path == "aws:region" else "this key is required"
        return f"{path}: missing; {hint}"
    message = err["msg"].removeprefix("Value error, ")
    if kind.startswith(("literal_", "int_", "string_", "bool_", "list_", "dict_", "too_", "greater_", "less_", "ip_")) \
            or kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{path}: {message} (got {err['input']!r})"
    return f"{path}: {message}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The YAML keys the model at `loc` accepts, for 'unknown key' messages."""
    model: Any = PlatformConfig
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = _unwrap(model, container=True)
            continue
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        model = _unwrap(field.annotation) if field else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items() if model is not PlatformConfig
                or n not in ("stack", "region")]
    return []


def _unwrap(annotation: Any, container: bool = False) -> Any:
    """Strip Optional; with container=True, step into dict values or list items."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if container and origin in (dict, list):
        return typing.get_args(annotation)[-1]
    return annotation
