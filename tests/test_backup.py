"""Backups: Velero's bucket, its DR replica, its identity and permissions, volume snapshots, schedules, password."""

from __future__ import annotations

import json

import pytest

from catalog.allocatable import allocatable, reserved_cpu_millicores
from catalog.fit import pool_fit_problem
from catalog.footprints import Placed, Pod

BUCKET = "aws:s3/bucket:Bucket"
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _attached(stack, type_, name):
    return stack.named(type_, name).inputs


def _velero(stack):
    return stack.named("kubernetes:helm.sh/v3:Release", "backup-velero")


def test_the_backup_bucket_is_private_versioned_kms_encrypted_and_protected_in_prod(stack):
    bucket = stack.named(BUCKET, "backup-bucket")
    assert bucket.inputs.get("forceDestroy") is False
    assert bucket.protect is (stack.stack == "prod")
    key = stack.named("aws:kms/key:Key", "backup-bucket-key")
    assert key.inputs["enableKeyRotation"] is True and key.protect is (stack.stack == "prod")
    assert _attached(stack, "aws:s3/bucketVersioning:BucketVersioning", "backup-bucket-versioning")[
        "versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = _attached(stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                        "BucketServerSideEncryptionConfiguration", "backup-bucket-encryption")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.state["arn"]}
    assert _attached(stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "backup-bucket-ownership")[
        "rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (lifecycle,) = _attached(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                             "backup-bucket-lifecycle")["rules"]
    # Velero deletes backups at their TTL; the bucket only expires what that leaves behind (old versions).
    assert "expiration" not in lifecycle
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": 30}


def test_prod_replicates_every_backup_to_a_bucket_in_the_dr_region_with_its_own_key(prod, dev):
    replica = prod.named(BUCKET, "backup-bucket-us-west-2")
    assert replica.protect and "pulumi:providers:aws::aws-dr::" in replica.provider
    dr_key = prod.named("aws:kms/key:Key", "backup-bucket-us-west-2-key")
    assert "pulumi:providers:aws::aws-dr::" in dr_key.provider
    config = prod.named("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "backup-replication")
    (rule,) = config.inputs["rules"]
    assert rule["destination"] == {"bucket": replica.state["arn"],
                                   "encryptionConfiguration": {"replicaKmsKeyId": dr_key.state["arn"]}}
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    versionings = {prod.named("aws:s3/bucketVersioning:BucketVersioning", n).urn
                   for n in ("backup-bucket-versioning", "backup-bucket-us-west-2-versioning")}
    assert versionings <= set(config.dependencies), "S3 refuses replication before both buckets are versioned"
    assert prod.outputs["backupReplicaBucket"] == replica.state["bucket"]
    assert not dev.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")


def test_velero_may_touch_its_bucket_its_key_and_ebs_snapshots_only(stack):
    bucket = stack.named(BUCKET, "backup-bucket").state["arn"]
    key = stack.named("aws:kms/key:Key", "backup-bucket-key").state["arn"]
    statements = {s["Sid"]: s for s in json.loads(stack.named("aws:iam/rolePolicy:RolePolicy",
                                                               "backup-velero").inputs["policy"])["Statement"]}
    assert statements["BackupObjects"]["Resource"] == f"{bucket}/*"
    assert statements["BackupBucket"] == {"Sid": "BackupBucket", "Effect": "Allow", "Action": "s3:ListBucket",
                                          "Resource": bucket}
    assert statements["BucketKeyThroughS3"]["Resource"] == key
    assert statements["BucketKeyThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert sorted(statements["EbsSnapshots"]["Action"]) == sorted(
        ["ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:CreateTags", "ec2:CreateVolume", "ec2:CreateSnapshot",
         "ec2:DeleteSnapshot"])
    every = [a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in every if a.endswith("*")]


def test_velero_assumes_its_role_through_irsa_pinned_to_its_one_service_account(stack):
    role = stack.named("aws:iam/role:Role", "backup-velero")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    provider = stack.outputs["oidcProviderArn"]
    issuer = provider.split(":oidc-provider/")[1]
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Condition"]["StringEquals"] == {f"{issuer}:sub": "system:serviceaccount:velero:velero-server",
                                                      f"{issuer}:aud": "sts.amazonaws.com"}
    values = _velero(stack).inputs["values"]
    assert values["serviceAccount"]["server"] == {"create": True, "name": "velero-server", "annotations": {
        "eks.amazonaws.com/role-arn": role.state["arn"]}}
    assert values["credentials"] == {"useSecret": False}, "no static keys"


def test_velero_stores_in_its_bucket_with_its_key_and_snapshots_volumes_through_csi(stack):
    values = _velero(stack).inputs["values"]
    (location,) = values["configuration"]["backupStorageLocation"]
    assert location["bucket"] == stack.outputs["backupBucket"]
    assert location["config"] == {"region": "us-east-1",
                                  "kmsKeyId": stack.named("aws:kms/key:Key", "backup-bucket-key").state["arn"]}
    assert values["configuration"]["features"] == "EnableCSI"
    (plugin,) = values["initContainers"]
    assert plugin["image"].startswith("docker.io/velero/velero-plugin-for-aws:v1.14."), "v1.14.x pairs with 1.18"
    addon = stack.named("aws:eks/addon:Addon", "eks-snapshot-controller")
    assert addon.inputs["addonVersion"].startswith("v8.")
    snapshot_class = stack.named("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", "backup-snapshot-class")
    assert snapshot_class.inputs["driver"] == "ebs.csi.aws.com"
    assert snapshot_class.inputs["metadata"]["labels"] == {"velero.io/csi-volumesnapshot-class": "true"}


def test_prod_moves_volume_data_into_the_bucket_dev_keeps_snapshots(stack):
    values = _velero(stack).inputs["values"]
    moving = stack.stack == "prod"
    assert values["deployNodeAgent"] is moving and values["configuration"]["defaultSnapshotMoveData"] is moving
    if moving:
        assert values["nodeAgent"]["disableHostPath"] is True, "the data mover needs no host path"
    schedules = [r for r in stack.of_type("kubernetes:velero.io/v1:Schedule")
                 if "includedNamespaceScopedResources" not in r.inputs["spec"]["template"]]
    assert all(s.inputs["spec"]["template"].get("snapshotMoveData", moving) is moving for s in schedules)


def test_schedules_back_up_every_team_namespace_every_six_hours_and_prod_the_cluster_daily(stack):
    schedules = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in
                 stack.of_type("kubernetes:velero.io/v1:Schedule")}
    teams = schedules["teams"]
    assert teams["schedule"] == "0 */6 * * *" and teams["template"]["ttl"] == "720h"
    assert sorted(teams["template"]["includedNamespaces"]) == ["ml-inference", "ml-jobs", "ml-training"]
    assert "events" in teams["template"]["excludedResources"]
    if stack.stack == "prod":
        cluster = schedules["cluster"]["template"]
        assert schedules["cluster"]["schedule"] == "0 3 * * *"
        assert cluster["includedClusterScopedResources"] == ["*"]
        assert cluster["excludedNamespaceScopedResources"] == ["*"]
    else:
        assert set(schedules) == {"teams"}


def test_the_repository_password_is_generated_kept_in_secrets_manager_and_synced_before_velero_starts(stack):
    password = stack.named("random:index/randomPassword:RandomPassword", "backup-repository-value")
    assert password.inputs["length"] >= 32 and password.protect is (stack.stack == "prod")
    container = stack.named("aws:secretsmanager/secret:Secret", "backup-repository")
    assert container.inputs["name"] == f"ml-platform/{stack.stack}/velero/repository-password"
    assert bool(container.inputs.get("replicas")) is (stack.stack == "prod")
    value = stack.named("aws:secretsmanager/secretVersion:SecretVersion", "backup-repository-value")
    assert SECRET_SIG in value.inputs["secretString"], "the password is a Pulumi secret in state"
    assert value.ignore_changes == ["secretString"], "a value restored from another stack is never rewritten"
    synced = stack.named("kubernetes:external-secrets.io/v1:ExternalSecret", "backup-repository-sync")
    assert synced.inputs["metadata"]["name"] == "velero-repo-credentials"
    assert synced.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    assert synced.inputs["spec"]["data"] == [{"secretKey": "repository-password", "remoteRef": {
        "key": f"ml-platform/{stack.stack}/velero/repository-password", "property": "repository-password"}}]
    # Velero creates the Secret with a built-in password when it is missing: it must start after the sync.
    assert synced.urn in _velero(stack).dependencies


def test_velero_runs_on_the_system_pool_in_a_baseline_namespace_scraped_from_monitoring(stack):
    values = _velero(stack).inputs["values"]
    assert values["nodeSelector"] == {"ml-platform/pool": "system"}
    assert values["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    namespace = stack.named("kubernetes:core/v1:Namespace", "backup-namespace").inputs["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    scrape = stack.named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "backup-namespace-allow-metrics-scrape")
    assert scrape.inputs["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8085}]


@pytest.mark.parametrize("vcpu, reserved", [(1, 60), (2, 70), (4, 80), (8, 90), (16, 110), (48, 190), (96, 310)])
def test_kube_reserved_cpu_follows_nodeadm(vcpu, reserved):
    assert reserved_cpu_millicores(vcpu) == reserved


def test_a_node_gives_pods_its_capacity_less_kube_reserved_and_eviction():
    node = allocatable("m6i.xlarge")  # 4 vCPU, 16 GiB, 4 ENIs x 15 addresses: 58 pods
    assert (node.cpu_millicores, node.memory_mib, node.pods) == (3920, 16384 - (11 * 58 + 255) - 100, 58)


def test_a_pod_bigger_than_any_node_is_refused_even_when_the_pool_total_fits():
    big = Placed("model-server", Pod(4000, 16 * 1024), 1)
    problem = pool_fit_problem(["g5.xlarge"], 4, [big])
    assert problem and problem.startswith("one g5.xlarge gives pods 3920m CPU / 15391Mi") and "model-server" in problem
