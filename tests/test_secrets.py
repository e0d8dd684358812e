"""Secrets: ESO reads only the stack's prefix, containers hold no value, and no provided secret reaches state."""

from __future__ import annotations

import json

import pytest
from conftest import SENTINEL

from infra.config import parse
from infra.config.stack_file import read_stack_config


def _config(stack):
    return parse(read_stack_config(stack.stack), stack=stack.stack)


def test_eso_reads_only_the_stack_prefix_and_decrypts_only_through_secrets_manager(stack):
    (policy,) = [r for r in stack.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "secrets-reader"]
    read, decrypt = json.loads(policy.inputs["policy"])["Statement"]
    assert read["Resource"] == f"arn:aws:secretsmanager:us-east-1:111122223333:secret:ml-platform/{stack.stack}/*"
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                      "secretsmanager:ListSecretVersionIds"]
    key = stack.named("aws:kms/key:Key", "secrets-key")
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key.state["arn"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_eso_identity_is_pinned_to_its_service_account(stack):
    trust = json.loads(stack.named("aws:iam/role:Role", "secrets-reader").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": f"ml-platform-{stack.stack}",
        "aws:RequestTag/kubernetes-namespace": "external-secrets",
        "aws:RequestTag/kubernetes-service-account": "external-secrets"}
    association = stack.named("aws:eks/podIdentityAssociation:PodIdentityAssociation", "secrets-reader")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("external-secrets",
                                                                                      "external-secrets")
    values = stack.named("kubernetes:helm.sh/v3:Release", "secrets-operator").inputs["values"]
    assert values["serviceAccount"]["name"] == "external-secrets" and values["leaderElect"] is True


def test_containers_hold_no_value_are_encrypted_and_replicated_in_prod(stack):
    cfg = _config(stack)
    containers = {r.inputs["name"]: r for r in stack.of_type("aws:secretsmanager/secret:Secret")}
    provided = {f"ml-platform/{stack.stack}/{s.remote_key}" for s in cfg.secrets.external_secrets.values()}
    generated = {f"ml-platform/{stack.stack}/{key}" for key in ("velero/repository-password", "grafana/admin")}
    assert set(containers) == provided | generated
    key = stack.named("aws:kms/key:Key", "secrets-key")
    for container in containers.values():
        assert container.inputs["kmsKeyId"] == key.state["arn"]
        assert container.inputs["recoveryWindowInDays"] == cfg.secrets.recovery_window_days
        assert container.protect is cfg.protect_stateful
        replicas = container.inputs.get("replicas") or []
        if cfg.dr_region:
            dr_key = stack.named("aws:kms/key:Key", f"secrets-key-{cfg.dr_region}")
            assert replicas == [{"region": "us-west-2", "kmsKeyId": dr_key.state["arn"]}]
        else:
            assert not replicas
    # The stack writes a value only for what it generates itself, and only as a Pulumi secret.
    versions = stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    written = {next(c for c in containers.values() if c.id == v.inputs["secretId"]).inputs["name"]
               for v in versions}
    assert written == generated
    assert not written & provided


def test_external_secrets_sync_into_their_namespace_from_the_store(stack):
    cfg = _config(stack)
    store = stack.named("kubernetes:external-secrets.io/v1:ClusterSecretStore", "secrets-store")
    assert store.inputs["spec"]["provider"] == {"aws": {"service": "SecretsManager", "region": "us-east-1"}}
    assert store.inputs["spec"]["conditions"] == [{"namespaces": sorted(
        {s.namespace for s in cfg.secrets.external_secrets.values()} | {"velero", "monitoring", "ml-jobs"})}]
    for name, secret in cfg.secrets.external_secrets.items():
        if secret.namespace == "monitoring":  # the observability component creates those (test_observability)
            continue
        resource = stack.named("kubernetes:external-secrets.io/v1:ExternalSecret", f"secrets-{name}")
        spec = resource.inputs["spec"]
        assert spec["target"] == {"name": name, "creationPolicy": "Owner"}
        assert spec["data"] == [{"secretKey": k, "remoteRef": {"key": f"ml-platform/{stack.stack}/{secret.remote_key}",
                                                                "property": p}} for k, p in secret.properties.items()]
        namespace = stack.named("kubernetes:core/v1:Namespace", f"tenancy-{secret.namespace}")
        assert namespace.urn in resource.property_dependencies["metadata"], "waits for its namespace"
        release = stack.named("kubernetes:helm.sh/v3:Release", "secrets-operator")
        assert release.urn in resource.dependencies, "the operator's webhook validates it"


def test_the_webhook_is_reachable_from_the_api_server_through_default_deny(stack):
    (policy,) = [p for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if p.name == "secrets-namespace-allow-api-server-webhooks"]
    (rule,) = policy.inputs["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 10250}]


def test_no_provided_secret_reaches_inputs_or_outputs(stack):
    """The stacks are recorded with a sentinel in the environment and in secret provider config (conftest)."""
    dumped = json.dumps([[r.inputs, r.state] for r in stack.resources], default=str) + json.dumps(
        stack.outputs, default=str)
    assert SENTINEL not in dumped
    assert not [r for r in stack.of_type("kubernetes:core/v1:Secret")
                if r.inputs.get("data") or r.inputs.get("stringData")], "the stack writes no Secret with data"


def test_a_secret_value_in_config_has_nowhere_to_go(raw_config):
    cfg = raw_config("dev")
    cfg["ml-platform:secrets"]["externalSecrets"]["hub-token"]["value"] = SENTINEL
    with pytest.raises(Exception) as err:
        parse(cfg, stack="dev")
    assert "externalSecrets.hub-token.value: unknown key" in str(err.value)
    assert SENTINEL not in str(err.value), "the error does not echo the value"
