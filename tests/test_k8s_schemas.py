"""Every core Kubernetes object the stacks declare is valid for the cluster's Kubernetes version.

kubernetes-validate carries the upstream OpenAPI schemas per version; strict
mode also refuses fields the schema does not have (a typo Kubernetes would
drop or reject). Custom resources are checked against the vendored CRD
schemas (test_crd_schemas.py), Helm releases against chart values.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from infra.config import parse
from infra.config.stack_file import read_stack_config

CORE_GROUPS = {"core", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "storage.k8s.io",
               "rbac.authorization.k8s.io"}


def manifest(resource) -> dict:
    group_version, kind = resource.type.removeprefix("kubernetes:").rsplit(":", 1)
    group, version = group_version.rsplit("/", 1)
    api_version = version if group == "core" else f"{group}/{version}"
    return {"apiVersion": api_version, "kind": kind,
            **{k: copy.deepcopy(v) for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_core_objects_validate_against_the_cluster_version(stack_name, dev, prod):
    recording = {"dev": dev, "prod": prod}[stack_name]
    version = parse(read_stack_config(stack_name), stack=stack_name).cluster.version
    objects = [r for r in recording.resources
               if r.type.startswith("kubernetes:") and r.type.split(":")[1].split("/")[0] in CORE_GROUPS]
    assert len(objects) > 40
    failures = []
    for resource in objects:
        try:
            kubernetes_validate.validate(manifest(resource), f"{version}.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{resource.type} {resource.name}: {exc.message} at {list(exc.path)}")
    assert not failures, "\n".join(failures)


def test_the_check_refuses_a_field_the_schema_does_not_have(dev):
    quota = next(r for r in dev.of_type("kubernetes:core/v1:ResourceQuota"))
    broken = manifest(quota)
    broken["spec"]["hardd"] = broken["spec"].pop("hard")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.35.0", strict=True)
