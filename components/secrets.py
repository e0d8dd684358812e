"""Secrets: External Secrets Operator syncing Secrets Manager into the cluster, and the containers it reads.

People put the values they provide (tokens, webhook URLs, API keys) into
Secrets Manager themselves: the stack creates each secret's container,
encrypted with the stack's rotating secrets key and, in prod, replicated to
the DR region, but never a value. ESO reads them through EKS Pod Identity
(upstream documents it: a store with no `auth` block), scoped to the stack's
prefix and to the key through Secrets Manager only, and writes the
Kubernetes Secrets the ExternalSecrets name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from catalog import footprints, metrics, namespaces
from catalog.charts import EXTERNAL_SECRETS
from catalog.scheduling import on_system_pool
from components.handles import ClusterHandle, PlatformContext
from components.iam import account_key_policy, policy_document
from components.identity import PodIdentityArgs, pod_identity_role
from components.namespace import NamespaceArgs, Scope, platform_namespace

NAMESPACE = namespaces.EXTERNAL_SECRETS
SERVICE_ACCOUNT = "external-secrets"  # the chart's controller service account (values.yaml serviceAccount.name)
STORE = "secrets-manager"
API = "external-secrets.io/v1"
WEBHOOK_PORT = 10250  # the chart's webhook.port: the API server calls it


@dataclass(frozen=True)
class SyncedSecret:
    name: str  # the target Kubernetes Secret (and ExternalSecret)
    namespace: str
    remote_key: str  # under the prefix
    properties: Mapping[str, str]  # Secret key -> JSON property
    refresh_interval: str


@dataclass(frozen=True)
class SecretsArgs:
    context: PlatformContext
    cluster: ClusterHandle
    replicas: int
    recovery_window_days: int
    protect: bool
    synced: Sequence[SyncedSecret]
    # Namespace name -> its output, so an ExternalSecret waits for the namespace it lives in.
    namespaces: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Namespaces platform components create (velero, monitoring): the store admits them, and their
    # components create the ExternalSecrets there (their namespace exists only inside that component).
    platform_namespaces: Sequence[str] = ()
    # Team namespaces other components sync copies into (evaluation jobs use their model's API key).
    copy_namespaces: Sequence[str] = ()
    dr_region: str | None = None
    dr_provider: aws.Provider | None = None


@dataclass(frozen=True)
class SecretsHandle:
    """What another component needs to keep a credential it generates here: prefix, keys, store, operator."""

    prefix: str
    key_arn: pulumi.Output[str]
    replica: Mapping[str, pulumi.Output[str]]  # DR region -> its key ARN (empty outside prod)
    recovery_window_days: int
    protect: bool
    # The ClusterSecretStore (created after the operator, whose webhook validates ExternalSecrets).
    store: pulumi.Resource
    # Provided secrets synced into platform namespaces: their component creates the ExternalSecret.
    provided: Sequence[SyncedSecret] = ()


def prefix(cluster_name: str) -> str:
    """Every secret of the stack lives under ml-platform/<stack>/: ESO may read there and nowhere else."""
    return cluster_name.replace("ml-platform-", "ml-platform/", 1)


def reader_policy(partition: str, region: str, account_id: str, secret_prefix: str, key_arn: str) -> str:
    return policy_document([
        {"Sid": "ReadTheStacksSecrets", "Effect": "Allow",
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                    "secretsmanager:ListSecretVersionIds"],
         "Resource": f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{secret_prefix}/*"},
        {"Sid": "DecryptThroughSecretsManagerOnly", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ])


def helm_values(replicas: int, system_pool: str) -> dict:
    """Controller, webhook and cert controller on the system pool, with requests; CRDs from the chart."""
    placement = on_system_pool(system_pool)
    return {
        "installCRDs": True,
        "replicaCount": replicas,
        # The chart leaves leader election off; with two replicas both would reconcile.
        "leaderElect": True,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "resources": footprints.ESO_CONTROLLER.resources(),
        **placement,
        "webhook": {"resources": footprints.ESO_WEBHOOK.resources(), "port": WEBHOOK_PORT, **placement},
        "certController": {"resources": footprints.ESO_CERT_CONTROLLER.resources(), **placement},
        # A Service for the controller's metrics (catalog/metrics.py): Prometheus's ServiceMonitor selects it.
        "metrics": {"service": {"enabled": True}},
    }


def external_secret(secret: SyncedSecret, secret_prefix: str, namespace: pulumi.Input[str],
                    wait: bool = False) -> dict:
    """The ExternalSecret; with `wait`, `pulumi up` holds until ESO has written the Secret (condition Ready)."""
    wait_for = {"annotations": {"pulumi.com/waitFor": "condition=Ready"}} if wait else {}
    return {
        "apiVersion": API, "kind": "ExternalSecret",
        "metadata": {"name": secret.name, "namespace": namespace, **wait_for},
        "spec": {
            "refreshInterval": secret.refresh_interval,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE},
            # The Secret belongs to the ExternalSecret: deleting one deletes the other.
            "target": {"name": secret.name, "creationPolicy": "Owner"},
            "data": [{"secretKey": key, "remoteRef": {"key": f"{secret_prefix}/{secret.remote_key}",
                                                      "property": prop}}
                     for key, prop in secret.properties.items()],
        },
    }


def cluster_secret_store(region: str, namespaces: Sequence[str]) -> dict:
    """The stack's Secrets Manager, for the namespaces that sync from it; no `auth`: Pod Identity."""
    return {
        "apiVersion": API, "kind": "ClusterSecretStore", "metadata": {"name": STORE},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": region}},
                 "conditions": [{"namespaces": sorted(set(namespaces))}]},
    }


class Secrets(pulumi.ComponentResource):
    """Secrets key (and its DR replica), secret containers, ESO with scoped Pod Identity, store, ExternalSecrets."""

    handle: SecretsHandle
    key_arn: pulumi.Output[str]
    secret_arns: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:secrets:Secrets", name, None, opts)
        context = args.context
        secret_prefix = prefix(context.cluster_name)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        # The account administers the key; IAM then scopes its use (ESO: decrypt via Secrets Manager only).
        policy = pulumi.Output.from_input(context.account_id).apply(
            lambda a: account_key_policy(a, context.partition))
        key = aws.kms.Key(f"{name}-key", description=f"{context.cluster_name} Secrets Manager secrets",
                          enable_key_rotation=True, deletion_window_in_days=30, policy=policy, opts=stateful)
        replica_key = None
        if args.dr_region and args.dr_provider is not None:
            replica_key = aws.kms.Key(
                f"{name}-key-{args.dr_region}", description=f"{context.cluster_name} secrets replicas",
                enable_key_rotation=True, deletion_window_in_days=30, policy=policy,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect, provider=args.dr_provider))

        reader = pod_identity_role(
            f"{name}-reader",
            PodIdentityArgs(
                context=context, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                inline_policies={f"{name}-reader": pulumi.Output.all(context.account_id, key.arn).apply(
                    lambda v: reader_policy(context.partition, context.region, v[0], secret_prefix, v[1]))},
                associate_with=args.cluster.name),
            parent=self)
        scope = platform_namespace(
            f"{name}-namespace",
            NamespaceArgs(NAMESPACE, "restricted", aws_apis=True, api_server_ingress_ports=[WEBHOOK_PORT],
                          scraped_ports=[metrics.EXTERNAL_SECRETS.port]),
            args.cluster, parent=self)
        release = scope.chart(f"{name}-operator", EXTERNAL_SECRETS,
                              helm_values(args.replicas, context.system_pool_name),
                              # The controller starts able to read Secrets Manager.
                              depends_on=reader.grants)
        store = scope.custom_resource(f"{name}-store",
                              cluster_secret_store(context.region, [*(s.namespace for s in args.synced),
                                                                    *args.platform_namespaces,
                                                                    *args.copy_namespaces]),
                              depends_on=[release])
        self.handle = SecretsHandle(
            prefix=secret_prefix, key_arn=key.arn,
            replica={args.dr_region: replica_key.arn} if args.dr_region and replica_key else {},
            recovery_window_days=args.recovery_window_days, protect=args.protect, store=store,
            provided=[s for s in args.synced if s.namespace in args.platform_namespaces])
        containers = {
            s.name: container(f"{name}-{s.name}", self.handle, s.remote_key,
                              f"{s.namespace}/{s.name}: put the value here (docs/secrets.md); the stack never does",
                              parent=self)
            for s in args.synced}
        for s in args.synced:
            if s.namespace in args.platform_namespaces:
                continue
            scope.custom_resource(f"{name}-{s.name}", external_secret(s, secret_prefix,
                                                                     args.namespaces.get(s.namespace, s.namespace)),
                                  # The operator's webhook validates it; the store and the value may come later
                                  # (ESO retries until both exist).
                                  depends_on=[release])

        self.key_arn = key.arn
        self.secret_arns = pulumi.Output.all(**{n: c.arn for n, c in containers.items()})
        self.register_outputs({"key_arn": self.key_arn, "secret_arns": self.secret_arns})


def container(resource_name: str, handle: SecretsHandle, remote_key: str, description: str,
              parent: pulumi.Resource) -> aws.secretsmanager.Secret:
    """A Secrets Manager secret under the prefix: the secrets key, the stack's recovery window, DR replicas."""
    return aws.secretsmanager.Secret(
        resource_name, name=f"{handle.prefix}/{remote_key}", kms_key_id=handle.key_arn, description=description,
        recovery_window_in_days=handle.recovery_window_days, force_overwrite_replica_secret=False,
        replicas=[{"region": region, "kms_key_id": arn} for region, arn in handle.replica.items()] or None,
        opts=pulumi.ResourceOptions(parent=parent, protect=handle.protect))


def provided_secrets(resource_name: str, handle: SecretsHandle, scope: Scope, namespace: str) -> list[pulumi.Resource]:
    """The ExternalSecrets of provided values that live in a platform component's namespace `scope`."""
    return [scope.custom_resource(f"{resource_name}-{s.name}", external_secret(s, handle.prefix, scope.namespace),
                                  depends_on=[handle.store])
            for s in handle.provided if s.namespace == namespace]


def generated_credential(resource_name: str, handle: SecretsHandle, scope: Scope, *, remote_key: str,
                         secret: str, key: str, parent: pulumi.Resource,
                         fixed: Mapping[str, str] | None = None) -> k8s.apiextensions.CustomResource:
    """A password the platform makes for itself, kept where it survives the cluster, synced back by ESO.

    pulumi-random generates it (a Pulumi secret: encrypted in state); Secrets Manager keeps it (replicated
    in prod); the ExternalSecret writes Secret `secret` with `key` (and the `fixed` keys, a user name say)
    and reports Ready once it has: whatever depends on the returned resource starts with the value in place.
    """
    stateful = pulumi.ResourceOptions(parent=parent, protect=handle.protect)
    # Never regenerated: a new value would lock the platform out of what the old one encrypted.
    password = random.RandomPassword(f"{resource_name}-value", length=40, special=False, opts=stateful)
    stored = container(resource_name, handle, remote_key,
                       f"{secret}: generated by the stack (pulumi-random); do not edit", parent)
    # Once written, Secrets Manager holds the truth: a restore that puts another stack's value there
    # (docs/backup.md) must survive the next `pulumi up --refresh`.
    version = aws.secretsmanager.SecretVersion(
        f"{resource_name}-value", secret_id=stored.id,
        secret_string=pulumi.Output.json_dumps({**(fixed or {}), key: password.result}),
        opts=pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(ignore_changes=["secretString"])))
    synced = SyncedSecret(secret, "", remote_key, {k: k for k in [*(fixed or {}), key]}, "1h")
    return scope.custom_resource(f"{resource_name}-sync", external_secret(synced, handle.prefix, scope.namespace,
                                                                          wait=True),
                                 depends_on=[handle.store, version])
