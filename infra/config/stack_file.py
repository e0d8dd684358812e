"""Reading `Pulumi.<stack>.yaml` as the Pulumi CLI does: duplicate keys refused, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.config.base import ConfigError

# The project directory: Pulumi.yaml and the stack files.
ROOT = Path(__file__).resolve().parents[2]


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML loader that rejects duplicate keys, as the Pulumi CLI does (libyaml's parser where installed)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(f"{Path(node.start_mark.name).name}: line {key_node.start_mark.line + 1}: "
                              f"key {key!r} is defined twice")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `config:` map of Pulumi.<stack>.yaml; a clear error if the file is missing or malformed."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(f"{path.name}: no such stack file; stacks here: {', '.join(known) or 'none'}")
    try:
        with path.open() as fh:
            document = yaml.load(fh, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{path.name}: {where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{path.name}: config: missing; the file needs a top-level `config:` map")
    return config
