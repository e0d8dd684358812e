"""Shared fixtures: each stack runs once per test session under the project's mock engine."""

from __future__ import annotations

import copy
import fcntl
import gc
import json
import os
import pickle
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import offline
from infra.config.stack_file import read_stack_config
from infra.offline import Recording, Resource


def pytest_configure(config):
    """As `mlp plan` does (infra/cli.py): the SDK's objects live all session, so collect young ones rarely."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


# A provided secret could enter through the environment (tokens, webhook URLs, AWS keys) or secret config
# the engine hands the program: the stacks every test reads are recorded with a sentinel in each place
# (tests/test_secrets.py asserts it reaches no input or output).
SENTINEL = "sentinel-6f1d2c-not-a-real-token"
SENTINEL_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "SLACK_WEBHOOK_URL", "PAGERDUTY_KEY", "AWS_SECRET_ACCESS_KEY")
SENTINEL_CONFIG = ("aws:accessKey", "aws:secretKey", "aws:token")


def run_with_sentinels(stack: str) -> Recording:
    saved = {k: os.environ.get(k) for k in (*SENTINEL_ENV, "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ.update({k: SENTINEL for k in SENTINEL_ENV})
    # As the engine marks encrypted stack-file values for the program.
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(SENTINEL_CONFIG))
    try:
        raw = {**read_stack_config(stack), **{k: SENTINEL for k in SENTINEL_CONFIG}}
        return offline.run(stack, raw=raw)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def shared(tmp_path_factory, worker_id: str, name: str, compute):
    """`compute()` once per test session: xdist workers share the first worker's result (a pickle)."""
    if worker_id == "master":
        return compute()
    root = tmp_path_factory.getbasetemp().parent  # this session's directory, shared by its workers
    path = root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


def _stack(tmp_path_factory, worker_id: str, name: str) -> Recording:
    # Two workers record the two stacks side by side: the second worker starts with prod.
    order = ("prod", "dev") if worker_id == "gw1" else ("dev", "prod")
    for stack in order[:order.index(name) + 1]:
        recording = shared(tmp_path_factory, worker_id, stack, lambda stack=stack: run_with_sentinels(stack))
    return recording


@pytest.fixture(scope="session")
def dev(tmp_path_factory, worker_id) -> Recording:
    return _stack(tmp_path_factory, worker_id, "dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory, worker_id) -> Recording:
    return _stack(tmp_path_factory, worker_id, "prod")


def run_variant(root, name: str, base: str, mutate) -> Recording:
    """Run the program with `base`'s stack file changed by `mutate`, written as Pulumi.<name>.yaml under root."""
    config = read_stack_config(base)
    mutate(config)
    (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return offline.run(name, root)


def _managed_pools(config: dict[str, Any]) -> None:
    pools = config["ml-platform:nodePools"]
    for name, types_ in (("cpu", ["c6i.xlarge"]), ("training", ["p4d.24xlarge"]), ("inference", ["g5.xlarge"])):
        pool = {k: v for k, v in pools[name].items() if k not in ("instanceFamilies", "timeSlicingReplicas")}
        pools[name] = {**pool, "provisioner": "managed", "instanceTypes": types_, "capacityTypes": ["on-demand"],
                       "minSize": 1, "maxSize": 2}
    del config["ml-platform:karpenter"]
    # Two fixed GPU nodes hold one replica and its rollout surge.
    config["ml-platform:serving"]["models"]["qwen-1-5b"]["replicas"] = {"min": 1, "max": 1}


@pytest.fixture(scope="session")
def managed(tmp_path_factory) -> Recording:
    """dev with every workload pool as a fixed-size managed node group (no Karpenter)."""
    return run_variant(tmp_path_factory.mktemp("managed"), "managed", "dev", _managed_pools)


_RECORDED: dict[tuple, Recording] = {}


@pytest.fixture
def recorded_once(monkeypatch):
    """In-process `mlp plan`/`mlp check` record each stack (root, config, preview) once per worker.

    The CLI only reads a recording, and a test that changes a stack does so in a directory of its own,
    which is part of the key.
    """
    real = offline.run

    def run(stack: str, root=offline.ROOT, raw=None, preview: bool = False) -> Recording:
        key = (stack, str(root), json.dumps(raw, sort_keys=True, default=str), preview)
        if key not in _RECORDED:
            _RECORDED[key] = real(stack, root, raw, preview)
        return _RECORDED[key]

    monkeypatch.setattr(offline, "run", run)


@pytest.fixture(scope="session")
def plain_eks() -> Recording:
    """The plain EKS program of tests/reference, recorded with its default config (none)."""
    program = Path(__file__).resolve().parent / "reference" / "plain_eks" / "__main__.py"
    return offline.record(lambda: runpy.run_path(str(program), run_name="__main__"), "reference", {})


@pytest.fixture(params=["dev", "prod"])
def stack(request, dev, prod) -> Recording:
    return {"dev": dev, "prod": prod}[request.param]


@pytest.fixture
def raw_config():
    """A fresh, mutable copy of a stack file's `config:` map."""
    cache: dict[str, dict[str, Any]] = {}

    def load(stack: str) -> dict[str, Any]:
        if stack not in cache:
            cache[stack] = read_stack_config(stack)
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
