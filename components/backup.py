"""Backup: Velero with its own bucket (replicated to the DR region in prod), scoped IRSA, CSI snapshots, schedules.

Volume data: CSI snapshots through the EKS snapshot-controller addon and a VolumeSnapshotClass Velero
picks by label. EBS snapshots never leave their region, so with data movement on (prod) the node agent
copies each snapshot's data into the bucket, whose replica in the DR region then holds everything.
Kopia encrypts those copies with the repository password: generated here, kept in Secrets Manager
(replicated), synced into `velero-repo-credentials` by ESO before Velero starts, so Velero never
falls back to its built-in default password and a new cluster can read the copies.

Identity is IRSA: the AWS plugin documents static keys and kube2iam, and upstream reports Pod Identity
failures with older plugins (vmware-tanzu/velero#7421); docs/backup.md says how to move later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from catalog import footprints, metrics, namespaces
from catalog.charts import VELERO, VELERO_AWS_PLUGIN_IMAGE
from catalog.scheduling import on_system_pool
from components.handles import ClusterHandle, PlatformContext
from components.iam import irsa_trust_policy, policy_document, service_trust_policy
from components.namespace import NamespaceArgs, platform_namespace
from components.secrets import SecretsHandle, generated_credential
from components.storage import PrivateBucket, PrivateBucketArgs

NAMESPACE = namespaces.VELERO
SERVICE_ACCOUNT = "velero-server"  # server, node agent and data movers all run as it (chart _helpers.tpl)
API = "velero.io/v1"
STORAGE_LOCATION = "default"
# Velero reads the Kopia repository password from this Secret and key, and creates it with a
# built-in password when it is missing (vmware-tanzu/velero v1.18.1 pkg/repository/keys/keys.go:33-66).
REPOSITORY_SECRET, REPOSITORY_KEY = "velero-repo-credentials", "repository-password"
EXCLUDED = ["events", "events.events.k8s.io"]  # rebuilt by the cluster; restoring them only confuses
CSI_DRIVER = "ebs.csi.aws.com"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    ttl: str
    namespaces: Sequence[str]  # empty with cluster_resources
    cluster_resources: bool


@dataclass(frozen=True)
class BackupArgs:
    context: PlatformContext
    cluster: ClusterHandle
    secrets: SecretsHandle
    schedules: Sequence[ScheduleSpec]
    move_volume_data: bool
    noncurrent_days: int
    protect: bool
    # Namespace name -> its output, so a Schedule waits for the namespaces it backs up.
    namespaces: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    dr_region: str | None = None
    dr_provider: aws.Provider | None = None


def velero_policy(partition: str, region: str, bucket_arn: str, key_arn: str) -> str:
    """The AWS plugin's documented policy (velero-plugin-for-aws v1.14.2 README) on this bucket, plus its key."""
    return policy_document([
        {"Sid": "EbsSnapshots", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:CreateTags", "ec2:CreateVolume",
                    "ec2:CreateSnapshot", "ec2:DeleteSnapshot"]},
        {"Sid": "BackupObjects", "Effect": "Allow", "Resource": f"{bucket_arn}/*",
         "Action": ["s3:GetObject", "s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]},
        {"Sid": "BackupBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        # SSE-KMS: writing needs a data key, reading needs decrypt; only through S3 in this region.
        {"Sid": "BucketKeyThroughS3", "Effect": "Allow", "Resource": key_arn,
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ])


def replication_policy(source: tuple[str, str, str], replica: tuple[str, str, str]) -> str:
    """S3 replication from (bucket ARN, key ARN, region) `source` to `replica`, re-encrypting with its key."""
    (bucket, key, region), (dr_bucket, dr_key, dr_region) = source, replica
    return policy_document([
        {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": bucket},
        {"Effect": "Allow", "Resource": f"{bucket}/*",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]},
        {"Effect": "Allow", "Resource": f"{dr_bucket}/*",
         "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": dr_key,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{dr_region}.amazonaws.com"}}},
    ])


def helm_values(bucket: pulumi.Input[str], key_arn: pulumi.Input[str], region: str, role_arn: pulumi.Input[str],
                move_volume_data: bool, system_pool: str) -> dict:
    """Server on the system pool with the AWS plugin, IRSA and no static keys; CSI snapshots, node agent."""
    values: dict = {
        "initContainers": [{
            "name": "velero-plugin-for-aws", "image": VELERO_AWS_PLUGIN_IMAGE, "imagePullPolicy": "IfNotPresent",
            "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            "resources": footprints.VELERO_PLUGIN_INIT.resources()}],
        "resources": footprints.VELERO_SERVER.resources(),
        "upgradeJobResources": footprints.VELERO_SERVER.resources(),
        **on_system_pool(system_pool),
        "metrics": {"enabled": True},
        "credentials": {"useSecret": False},
        "serviceAccount": {"server": {"create": True, "name": SERVICE_ACCOUNT,
                                      "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        "snapshotsEnabled": True,
        "configuration": {
            "backupStorageLocation": [{"name": STORAGE_LOCATION, "provider": "aws", "bucket": bucket,
                                       "default": True, "config": {"region": region, "kmsKeyId": key_arn}}],
            "volumeSnapshotLocation": [{"name": STORAGE_LOCATION, "provider": "aws", "config": {"region": region}}],
            "features": "EnableCSI",
            "defaultSnapshotMoveData": move_volume_data,
        },
        "deployNodeAgent": move_volume_data,
    }
    if move_volume_data:
        values["nodeAgent"] = {
            "resources": footprints.VELERO_NODE_AGENT.resources(),
            # Data movers mount restored snapshots wherever the scheduler puts them: every node, GPU ones too.
            "tolerations": [{"operator": "Exists"}],
            # The data mover needs no host path (that is file-system backup, unused): baseline Pod Security.
            "disableHostPath": True,
        }
    return values


def schedule(spec: ScheduleSpec, move_volume_data: bool, namespace: pulumi.Input[str],
             included: Sequence[pulumi.Input[str]]) -> dict:
    """A Velero Schedule: team namespaces (their volumes' data moved in prod), or cluster-scoped objects only."""
    template: dict = {"ttl": spec.ttl, "storageLocation": STORAGE_LOCATION}
    if spec.cluster_resources:
        template |= {"includedNamespaces": ["*"], "includedClusterScopedResources": ["*"],
                     "excludedNamespaceScopedResources": ["*"]}
    else:
        template |= {"includedNamespaces": list(included), "excludedResources": EXCLUDED,
                     "snapshotMoveData": move_volume_data}
    return {"apiVersion": API, "kind": "Schedule", "metadata": {"name": spec.name, "namespace": namespace},
            "spec": {"schedule": spec.cron, "useOwnerReferencesInBackup": False, "template": template}}


def volume_snapshot_class() -> dict:
    """The class Velero uses for EBS CSI snapshots (it picks the one labelled for the driver)."""
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": "ebs-csi-velero", "labels": {"velero.io/csi-volumesnapshot-class": "true"}},
            "driver": CSI_DRIVER, "deletionPolicy": "Retain"}


class Backup(pulumi.ComponentResource):
    """Backup bucket (and DR replica), Velero with IRSA, snapshot class, repository password, Schedules."""

    bucket_name: pulumi.Output[str]
    replica_bucket_name: pulumi.Output[str] | None
    role_name: pulumi.Output[str]  # Velero's IAM role: a DR restore grants it the replica (docs/backup.md)

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:backup:Backup", name, None, opts)
        context, child = args.context, pulumi.ResourceOptions(parent=self)
        bucket = PrivateBucket(f"{name}-bucket", PrivateBucketArgs(context=context, protect=args.protect,
                                                                  noncurrent_days=args.noncurrent_days), opts=child)
        self.replica_bucket_name = self._replicate(name, args, bucket) if args.dr_region else None

        role = aws.iam.Role(f"{name}-velero", assume_role_policy=args.cluster.oidc_provider_arn.apply(
            lambda arn: irsa_trust_policy(arn, NAMESPACE, SERVICE_ACCOUNT)), opts=child)
        grant = aws.iam.RolePolicy(f"{name}-velero", role=role.id, policy=pulumi.Output.all(
            bucket.arn, bucket.kms_key_arn).apply(
            lambda a: velero_policy(context.partition, context.region, a[0], a[1])), opts=child)

        scope = platform_namespace(
            f"{name}-namespace",
            NamespaceArgs(NAMESPACE, "baseline", aws_apis=True, scraped_ports=[metrics.VELERO.port]),
            args.cluster, parent=self)
        password = generated_credential(f"{name}-repository", args.secrets, scope,
                                        remote_key="velero/repository-password", secret=REPOSITORY_SECRET,
                                        key=REPOSITORY_KEY, parent=self)
        snapshot_class = volume_snapshot_class()
        # No spec: the object's fields are top-level, which the typed CustomResource cannot carry.
        pulumi.CustomResource(f"kubernetes:{snapshot_class['apiVersion']}:{snapshot_class['kind']}",
                              f"{name}-snapshot-class", snapshot_class, opts=scope.opts)
        values = helm_values(bucket.bucket_name, bucket.kms_key_arn, context.region, role.arn,
                             args.move_volume_data, context.system_pool_name)
        # Velero starts with its role usable and the repository password already synced.
        release = scope.chart(f"{name}-velero", VELERO, values, depends_on=[grant, password])
        for spec in args.schedules:
            included = [args.namespaces.get(n, n) for n in spec.namespaces]
            scope.custom_resource(f"{name}-{spec.name}",
                                  schedule(spec, args.move_volume_data, scope.namespace, included),
                                  depends_on=[release])

        self.bucket_name = bucket.bucket_name
        self.role_name = role.name
        self.register_outputs({"bucket_name": self.bucket_name, "replica_bucket_name": self.replica_bucket_name,
                               "role_name": self.role_name})

    def _replicate(self, name: str, args: BackupArgs, bucket: PrivateBucket) -> pulumi.Output[str]:
        """A bucket in the DR region (its own key, versioned, protected) receiving every object version."""
        context, child = args.context, pulumi.ResourceOptions(parent=self)
        replica = PrivateBucket(
            f"{name}-bucket-{args.dr_region}",
            PrivateBucketArgs(context=context, protect=args.protect, noncurrent_days=args.noncurrent_days),
            opts=pulumi.ResourceOptions(parent=self, providers=[args.dr_provider] if args.dr_provider else None))
        role = aws.iam.Role(f"{name}-replication", assume_role_policy=service_trust_policy("s3.amazonaws.com"),
                            opts=child)
        policy = aws.iam.RolePolicy(f"{name}-replication", role=role.id, policy=pulumi.Output.all(
            bucket.arn, bucket.kms_key_arn, replica.arn, replica.kms_key_arn).apply(
            lambda a: replication_policy((a[0], a[1], context.region), (a[2], a[3], str(args.dr_region)))),
            opts=child)
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=bucket.bucket_name, role=role.arn,
            rules=[{
                "id": "dr", "status": "Enabled", "filter": {"prefix": ""},
                # Velero deletes expired backups; the replica follows (old versions stay for noncurrentDays).
                "delete_marker_replication": {"status": "Enabled"},
                "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
                "destination": {"bucket": replica.arn,
                                "encryption_configuration": {"replica_kms_key_id": replica.kms_key_arn}},
            }],
            # S3 refuses a replication rule until both buckets are versioned and the role may replicate.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket.versioning, replica.versioning, policy]))
        return replica.bucket_name
