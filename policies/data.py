"""Data at rest and in transit: KMS keys, S3 buckets, SQS queues, log retention."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    as_list,
    cis,
    each_has,
    eks_bp,
    num,
    resource_rule,
    stack_rule,
    statements,
)

BUCKET = "aws:s3/bucket:Bucket"

kms_key_rotation = resource_rule(
    "kms-key-rotation", "Customer-managed KMS keys rotate yearly.", "aws:kms/key:Key",
    lambda p, c: [] if p.get("enableKeyRotation") is True else ["key rotation is off; set enableKeyRotation=true"],
    severity=Severity.MEDIUM, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set enableKeyRotation=true.",
    unset="enableKeyRotation unset: false (KMS developer guide, rotating keys; Pulumi aws.kms.Key docs): fails.")


def _per_bucket(config_type: str, ok: Any, problem: str):
    return each_has(BUCKET, config_type, "bucket", ok, f"bucket {{name}}: {problem}")


def _blocks_all(props: Mapping[str, Any]) -> bool:
    return all(props.get(k) is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                              "restrictPublicBuckets"))


def _kms_encrypted(props: Mapping[str, Any]) -> bool:
    return any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse")
               for rule in props.get("rules") or [])


def _denies_plain_http(document: Any) -> bool:
    return any(s.get("Effect") == "Deny" and "false" in str((s.get("Condition") or {}).get("Bool", {})
                                                           .get("aws:SecureTransport")).lower()
               for s in statements(document))


s3_block_public_access = stack_rule(
    "s3-block-public-access", "Every bucket blocks all public access.",
    _per_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", _blocks_all,
                "public access is not fully blocked"),
    severity=Severity.CRITICAL, framework=eks_bp("security#data-encryption-and-secrets-management"),
    remediation="Add a BucketPublicAccessBlock with all four settings true (components/storage.PrivateBucket).",
    unset=("No BucketPublicAccessBlock: AWS turns all four on for new buckets (S3 user guide, since April 2023), "
           "but nothing in the stack holds them, so a console change or an older bucket goes unseen: fails. A "
           "flag unset in the resource: false, fails."))

s3_kms_encryption = stack_rule(
    "s3-kms-encryption", "Every bucket encrypts with KMS by default.",
    _per_bucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                _kms_encrypted, "no default KMS encryption"),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Add a server-side encryption configuration with sseAlgorithm aws:kms.",
    unset=("No encryption configuration: SSE-S3 with S3-managed keys, not KMS (S3 user guide, default "
           "encryption): fails."))

s3_versioning = stack_rule(
    "s3-versioning", "Every bucket is versioned.",
    _per_bucket("aws:s3/bucketVersioning:BucketVersioning",
                lambda p: (p.get("versioningConfiguration") or {}).get("status") == "Enabled",
                "versioning is off (never Suspended: a suspended bucket overwrites and loses objects)"),
    severity=Severity.MEDIUM, framework=eks_bp("reliability"),
    remediation="Add a BucketVersioning with status Enabled; deleted backups stay recoverable.",
    unset="No versioning resource: the bucket is unversioned (S3 user guide, versioning): fails.")

s3_deny_insecure_transport = stack_rule(
    "s3-deny-insecure-transport", "Every bucket policy denies non-TLS requests.",
    _per_bucket("aws:s3/bucketPolicy:BucketPolicy", lambda p: _denies_plain_http(p.get("policy")),
                "plain-HTTP requests are not denied"),
    severity=Severity.HIGH, framework=eks_bp("security#encryption-in-transit"),
    remediation="Add a Deny statement on s3:* with Condition Bool aws:SecureTransport=false.",
    unset="No bucket policy: plain-HTTP requests are allowed (S3 user guide, aws:SecureTransport): fails.")

s3_acls_disabled = stack_rule(
    "s3-acls-disabled", "Every bucket disables ACLs (object ownership BucketOwnerEnforced).",
    _per_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                lambda p: (p.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced",
                "ACLs are enabled: an object ACL can still grant access the bucket policy does not show"),
    severity=Severity.HIGH, framework=eks_bp("security#data-encryption-and-secrets-management"),
    remediation="Add BucketOwnershipControls with objectOwnership BucketOwnerEnforced (PrivateBucket does).",
    unset=("No BucketOwnershipControls: new buckets get BucketOwnerEnforced (S3 user guide, Object Ownership, "
           "since April 2023), but the stack does not hold it, as with the public access block: fails."))

PUBLIC_CANNED = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


def _public_acl(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    canned = props.get("acl")
    if canned in PUBLIC_CANNED:
        yield f"canned ACL {canned} makes objects readable outside the account"
    policy = props.get("accessControlPolicy") or {}
    for grant in as_list(policy.get("grants") if isinstance(policy, Mapping) else None):
        uri = ((grant or {}).get("grantee") or {}).get("uri") if isinstance(grant, Mapping) else None
        if uri in PUBLIC_GROUPS:
            yield f"an ACL grant to {uri.rsplit('/', 1)[1]} makes the bucket public"


s3_no_public_acl = resource_rule(
    "s3-no-public-acl", "No bucket or object ACL grants public access.",
    [BUCKET, "aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketObjectv2:BucketObjectv2"], _public_acl,
    severity=Severity.CRITICAL, framework=eks_bp("security#data-encryption-and-secrets-management"),
    remediation="Drop the ACL: keep ACLs disabled (BucketOwnerEnforced) and grant access in the bucket policy.",
    unset="acl and grants unset: private, the owner alone has access (S3 user guide, ACL overview): passes.")


def _ebs_encrypted(args: Any, _: dict) -> Iterator[str]:
    props = args.props
    if args.resource_type == "aws:ebs/encryptionByDefault:EncryptionByDefault":
        # AWS default: off until set; the resource's `enabled` defaults to true.
        if props.get("enabled") is False:
            yield "EBS encryption by default is turned off for the account and region"
    elif props.get("encrypted") is not True:
        # Absent means unencrypted unless the account's default says otherwise (AWS EC2 CreateVolume/CopySnapshot).
        what = "snapshot copy" if args.resource_type.endswith("SnapshotCopy") else "volume"
        yield f"the {what} is not encrypted; set encrypted=true (and a kmsKeyId)"


ebs_encrypted = resource_rule(
    "ebs-encrypted", "EBS volumes and snapshot copies are encrypted; the account default stays on.",
    ["aws:ebs/volume:Volume", "aws:ebs/snapshotCopy:SnapshotCopy",
     "aws:ebs/encryptionByDefault:EncryptionByDefault"], with_args=_ebs_encrypted, severity=Severity.HIGH,
    framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set encrypted=true with a customer-managed kmsKeyId; never disable EBS encryption by default.",
    unset=("encrypted unset on a volume or snapshot copy: false unless the region's encryption by default is on "
           "(Pulumi aws.ebs.Volume docs; EC2 user guide): fails. EncryptionByDefault.enabled unset: true, "
           "passes."))


s3_no_force_destroy = resource_rule(
    "s3-no-force-destroy", "Buckets are never force-destroyed with their objects.", BUCKET,
    lambda p, c: ["forceDestroy is on: `pulumi destroy` would delete every object"] if p.get("forceDestroy") else [],
    severity=Severity.HIGH, framework=eks_bp("reliability"),
    remediation="Set forceDestroy=false; empty a bucket deliberately before deleting it.",
    unset="forceDestroy unset: false (Pulumi aws.s3.Bucket docs): passes.")


sqs_encrypted = resource_rule(
    "sqs-encrypted", "SQS queues are encrypted at rest.", "aws:sqs/queue:Queue",
    lambda p, c: ([] if p.get("sqsManagedSseEnabled") is not False or p.get("kmsMasterKeyId") else
                  ["sqsManagedSseEnabled is false and no KMS key is set: the queue is not encrypted; set "
                   "sqsManagedSseEnabled=true or a KMS key"]),
    severity=Severity.MEDIUM, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set sqsManagedSseEnabled=true (or kmsMasterKeyId).",
    unset=("sqsManagedSseEnabled and kmsMasterKeyId unset: new queues get SSE-SQS (SQS developer guide, "
           "encryption at rest; the default since 2022): passes. sqsManagedSseEnabled false with no key: fails."))


sqs_deny_insecure_transport = stack_rule(
    "sqs-deny-insecure-transport", "Every queue policy denies non-TLS requests.",
    each_has("aws:sqs/queue:Queue", "aws:sqs/queuePolicy:QueuePolicy", "queueUrl",
              lambda p: _denies_plain_http(p.get("policy")), "queue {name}: plain-HTTP access is not denied"),
    severity=Severity.MEDIUM, framework=eks_bp("security#encryption-in-transit"),
    remediation="Add a QueuePolicy with a Deny on sqs:* when aws:SecureTransport is false.",
    unset=("No queue policy: plain-HTTP requests are accepted (SQS developer guide, security best practices): "
           "fails."))


def _retention(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    days = props.get("retentionInDays")
    if not days:
        yield "logs are kept forever; set retentionInDays"
    elif float(days) < config["minimumDays"]:
        yield f"logs are kept {float(days):.0f} days; keep at least {num(config['minimumDays'])} for investigations"


log_group_retention = resource_rule(
    "log-group-retention", "Log groups keep logs for a finite, sufficient time.", "aws:cloudwatch/logGroup:LogGroup",
    _retention, severity=Severity.LOW, framework=cis("2.1.1", "Enable audit Logs"),
    remediation="Set retentionInDays to a CloudWatch retention period of at least minimumDays.",
    config={"minimumDays": {"type": "integer", "default": 7}},
    unset=("retentionInDays unset: logs never expire (CloudWatch Logs user guide; Pulumi aws.cloudwatch.LogGroup "
           "docs): fails."))


SECRET = "aws:secretsmanager/secret:Secret"


def _secret_cmk(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    key = props.get("kmsKeyId")
    if not key or str(key).endswith("alias/aws/secretsmanager"):
        yield (f"secret {props.get('name')} is encrypted with the AWS-managed key: no key policy of yours decides "
               f"who may decrypt it, and its replicas cannot use it; set kmsKeyId to the stack's secrets key")


secrets_customer_key = resource_rule(
    "secretsmanager-customer-key", "Secrets Manager secrets are encrypted with a customer-managed KMS key.", SECRET,
    _secret_cmk, severity=Severity.HIGH, framework=cis("5.3.1", "Ensure Kubernetes Secrets are encrypted using "
                                                                "CMKs managed in AWS KMS"),
    remediation="Set kmsKeyId to a rotating customer-managed key (components/secrets.py does).",
    unset=("kmsKeyId unset: the AWS-managed key aws/secretsmanager, which no key policy of yours scopes (Secrets "
           "Manager user guide, encryption): fails."))


def _secret_replicated(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    if not config["required"]:
        return
    replicas = [r for r in as_list(props.get("replicas")) if isinstance(r, Mapping)]
    if not replicas:
        yield f"secret {props.get('name')} has no replica: it is lost with its region; replicate it to the DR region"
    for replica in replicas:
        if not replica.get("kmsKeyId"):
            yield f"secret {props.get('name')}'s replica in {replica.get('region')} has no customer-managed key"


secrets_replicated = resource_rule(
    "secretsmanager-replicated", "Secrets Manager secrets are replicated, with their own key, where required (prod).",
    SECRET, _secret_replicated, severity=Severity.MEDIUM, framework=eks_bp("reliability"),
    remediation="Set ml-platform:drRegion: each secret then gets a replica there, encrypted with a key in that region.",
    config={"required": {"type": "boolean", "default": False}},
    unset=("replicas unset: no replica (Secrets Manager user guide, multi-Region secrets): fails where the pack "
           "config requires replicas."))


RULES = [
    kms_key_rotation, s3_block_public_access, s3_kms_encryption, s3_versioning, s3_deny_insecure_transport,
    s3_no_force_destroy, s3_acls_disabled, s3_no_public_acl, ebs_encrypted, sqs_encrypted, sqs_deny_insecure_transport, log_group_retention, secrets_customer_key,
    secrets_replicated,
]
