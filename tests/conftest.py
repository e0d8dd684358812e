"""Shared fixtures: each stack runs once per test session under the project's mock engine."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import offline
from infra.offline import Recording, Resource


@pytest.fixture(scope="session")
def dev() -> Recording:
    return offline.run("dev")


@pytest.fixture(scope="session")
def prod() -> Recording:
    return offline.run("prod")


@pytest.fixture(params=["dev", "prod"])
def stack(request, dev, prod) -> Recording:
    return {"dev": dev, "prod": prod}[request.param]


@pytest.fixture
def raw_config():
    """A fresh, mutable copy of a stack file's `config:` map."""
    cache: dict[str, dict[str, Any]] = {}

    def load(stack: str) -> dict[str, Any]:
        if stack not in cache:
            cache[stack] = offline.read_stack_config(stack)
        return copy.deepcopy(cache[stack])

    return load


def node_group(recording: Recording, pool: str) -> Resource:
    """The managed node group of `pool` (groups are name-prefixed with the pool name)."""
    groups = [r for r in recording.of_type("aws:eks/nodeGroup:NodeGroup")
              if r.inputs.get("nodeGroupNamePrefix") == f"{pool}-"]
    assert len(groups) == 1, f"{recording.stack}: expected one node group for pool {pool}, got {len(groups)}"
    return groups[0]


def launch_template(recording: Recording, pool: str) -> Resource:
    group = node_group(recording, pool)
    siblings = [r for r in recording.of_type("aws:ec2/launchTemplate:LaunchTemplate") if r.parent == group.parent]
    assert len(siblings) == 1, f"{recording.stack}: pool {pool} has {len(siblings)} launch templates"
    return siblings[0]
