"""Every custom resource the stacks create validates against its upstream CRD schema.

Schemas: tests/schemas/<project>-<version>/ (openAPIV3Schema of the served
version, with its source in SOURCE.md). jsonschema ignores the CEL rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from catalog.charts import EXTERNAL_SECRETS, KARPENTER, VELERO_APP_VERSION
from catalog.eks import RELEASES

SCHEMAS = Path(__file__).parent / "schemas"
KINDS = {
    ("karpenter.sh/v1", "NodePool"): f"karpenter-{KARPENTER.version}/nodepool.json",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): f"karpenter-{KARPENTER.version}/ec2nodeclass.json",
    ("external-secrets.io/v1", "ClusterSecretStore"): f"external-secrets-{EXTERNAL_SECRETS.version}/clustersecretstore.json",
    ("external-secrets.io/v1", "ExternalSecret"): f"external-secrets-{EXTERNAL_SECRETS.version}/externalsecret.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "prometheus-operator-0.93.1/servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-operator-0.93.1/prometheusrule.json",
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): "prometheus-operator-0.93.1/alertmanagerconfig.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-2.20.2/scaledobject.json",
    ("velero.io/v1", "Schedule"): f"velero-{VELERO_APP_VERSION}/schedule.json",
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): "external-snapshotter-{snapshotter}/volumesnapshotclass.json",
}


def _validator(api_version: str, kind: str, cluster_version: str) -> jsonschema.Validator:
    # The snapshot CRDs come with the EKS snapshot-controller addon: v8.6.0-eksbuild.N is external-snapshotter 8.6.0.
    snapshotter = RELEASES[cluster_version].addons["snapshot-controller"].lstrip("v").split("-")[0]
    schema = json.loads((SCHEMAS / KINDS[(api_version, kind)].format(snapshotter=snapshotter)).read_text())
    return jsonschema.Draft7Validator(schema)


def _custom_resources(recording):
    return [r for r in recording.resources if r.type.startswith("kubernetes:") and "/" in r.type.split(":")[1]
            and r.type.split(":")[1].split("/")[0] not in ("core", "apps", "storage.k8s.io", "helm.sh", "batch",
                                                           "policy", "networking.k8s.io", "autoscaling",
                                                           "rbac.authorization.k8s.io")]


def test_every_custom_resource_kind_has_a_vendored_schema(dev, prod):
    for recording in (dev, prod):
        for resource in _custom_resources(recording):
            key = (resource.inputs["apiVersion"], resource.inputs["kind"])
            assert key in KINDS, f"{resource.type} {resource.name}: no schema vendored for {key}"


def test_custom_resources_validate(dev, prod):
    for recording in (dev, prod):
        for resource in _custom_resources(recording):
            obj = {k: v for k, v in resource.inputs.items() if not k.startswith("__")}
            version = recording.named("aws:eks/cluster:Cluster", "eks").inputs["version"]
            errors = sorted(_validator(obj["apiVersion"], obj["kind"], version).iter_errors(obj), key=str)
            assert not errors, f"{recording.stack} {resource.name}: {errors[0].message} at {list(errors[0].path)}"


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s["disruption"].update(consolidationPolicy="Aggressive"), "'Aggressive' is not one of"),
    (lambda s: s["template"]["spec"]["requirements"][0].update(operator="Like"), "'Like' is not one of"),
])
def test_schema_catches_a_broken_nodepool(dev, mutate, message):
    (pool,) = [r for r in dev.of_type("kubernetes:karpenter.sh/v1:NodePool") if r.inputs["metadata"]["name"] == "cpu"]
    obj = json.loads(json.dumps({k: pool.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}))
    mutate(obj["spec"])
    errors = list(_validator("karpenter.sh/v1", "NodePool", "1.35").iter_errors(obj))
    assert errors and message in errors[0].message
