"""Helm ignores unknown keys silently: every key the stack sets must exist in the pinned chart.

Each release's chart and version must have its values.yaml vendored under
tests/charts/<chart>-<version>/ (see SOURCE.md there for where it came from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CHARTS = Path(__file__).parent / "charts"
# Keys whose content is free-form in every chart (maps the chart leaves open, or chart-defined configs).
OPEN = {"nodeSelector", "podAnnotations", "podLabels", "labels", "annotations", "resources", "map"}


def _chart_values(chart: str, version: str) -> dict[str, Any]:
    root = CHARTS / f"{chart}-{version}"
    assert root.is_dir(), f"{chart} {version} is not vendored under tests/charts/"
    values = yaml.safe_load((root / "values.yaml").read_text()) or {}
    for sub in (root / "charts").glob("*/values.yaml") if (root / "charts").is_dir() else []:
        alias = "nfd" if sub.parent.name.startswith("node-feature-discovery") else sub.parent.name
        values[alias] = _merge(yaml.safe_load(sub.read_text()) or {}, values.get(alias, {}))
    return values


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's value merge: the parent chart's values for a sub-chart override its defaults key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def unknown_keys(ours: dict[str, Any], theirs: dict[str, Any], path: str = "") -> list[str]:
    missing = []
    for key, value in ours.items():
        where = f"{path}.{key}" if path else key
        if key not in theirs:
            missing.append(where)
        elif key in OPEN or theirs[key] in ({}, None):
            continue
        elif isinstance(value, dict) and isinstance(theirs[key], dict):
            missing += unknown_keys(value, theirs[key], where)
    return missing


def _releases(dev, prod):
    return [(rec.stack, r) for rec in (dev, prod) for r in rec.of_type("kubernetes:helm.sh/v3:Release")]


def test_every_release_pins_a_vendored_chart_version(dev, prod):
    for stack, release in _releases(dev, prod):
        version = release.inputs["version"]
        assert version and version not in ("latest", "*"), f"{stack}: {release.name} is not pinned"
        assert (CHARTS / f"{release.inputs['name']}-{version}").is_dir() or release.inputs["name"] == "karpenter-crd", \
            f"{stack}: {release.inputs['name']} {version} has no vendored values under tests/charts/"


def test_every_value_key_exists_in_the_chart(dev, prod):
    for stack, release in _releases(dev, prod):
        if not release.inputs.get("values"):
            continue
        theirs = _chart_values(release.inputs["name"], release.inputs["version"])
        assert unknown_keys(release.inputs["values"], theirs) == [], f"{stack}: {release.name}"


@pytest.mark.parametrize("ours, missing", [
    ({"settings": {"clusterName": "x"}}, []),
    ({"settings": {"clustername": "x"}}, ["settings.clustername"]),
    ({"nodeSelector": {"anything": "goes"}}, []),
    ({"controler": {"resources": {}}}, ["controler"]),
])
def test_the_key_check_itself_catches_typos(ours, missing):
    assert unknown_keys(ours, _chart_values("karpenter", "1.14.1")) == missing


def test_values_validate_against_the_chart_schema_where_it_ships_one(dev, prod):
    """Charts with a values.schema.json reject at install what it forbids: reject it here first."""
    checked = set()
    for stack, release in _releases(dev, prod):
        path = CHARTS / f"{release.inputs['name']}-{release.inputs['version']}" / "values.schema.json"
        if not path.is_file():
            continue
        schema = json.loads(path.read_text())
        validator = jsonschema.validators.validator_for(schema)(schema)
        merged = _merge(yaml.safe_load(path.with_name("values.yaml").read_text()) or {}, release.inputs["values"])
        errors = sorted(validator.iter_errors(merged), key=str)
        assert not errors, f"{stack} {release.name}: {errors[0].message} at {list(errors[0].path)}"
        checked.add(release.inputs["name"])
    assert {"velero", "external-secrets"} <= checked
