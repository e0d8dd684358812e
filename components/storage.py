"""A private S3 bucket the way every stateful bucket here must be: one place, one shape.

KMS-encrypted with its own rotating key, versioned, all public access
blocked, ACLs disabled, non-TLS requests denied, never force-destroyed.
Flow logs, backups and evaluation results all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.handles import PlatformContext
from components.iam import account_key_policy, policy_document

LOG_DELIVERY = "delivery.logs.amazonaws.com"


@dataclass(frozen=True)
class PrivateBucketArgs:
    context: PlatformContext
    protect: bool
    expire_days: int | None = None  # expire every object (and old versions) after this many days
    # Expire only old versions (overwritten or deleted) after this many days: for buckets whose owner
    # deletes objects itself (Velero deletes expired backups).
    noncurrent_days: int | None = None
    log_delivery: bool = False  # let VPC flow logs (delivery.logs.amazonaws.com) write


def bucket_policy(bucket_arn: str, account_id: str, region: str, partition: str, log_delivery: bool) -> str:
    statements: list[dict] = [{
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    if log_delivery:
        source = {"StringEquals": {"aws:SourceAccount": account_id},
                  "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account_id}:*"}}
        statements += [
            {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": LOG_DELIVERY},
             "Action": "s3:PutObject", "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
             "Condition": {**source, "StringEquals": {**source["StringEquals"],
                                                      "s3:x-amz-acl": "bucket-owner-full-control"}}},
            {"Sid": "AWSLogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": LOG_DELIVERY},
             "Action": "s3:GetBucketAcl", "Resource": bucket_arn, "Condition": source},
        ]
    return policy_document(statements)


def key_policy(account_id: str, partition: str, log_delivery: bool) -> str:
    statements: list[dict] = []
    if log_delivery:
        statements.append({
            "Sid": "LogDeliveryEncrypts",
            "Effect": "Allow",
            "Principal": {"Service": LOG_DELIVERY},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        })
    return account_key_policy(account_id, partition, statements)


def lifecycle_rule(expire_days: int | None, noncurrent_days: int | None) -> dict:
    """Expire objects (and their old versions) after `expire_days`, or only old versions after `noncurrent_days`."""
    rule: dict = {"id": "expire", "status": "Enabled", "filter": {},
                  "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                  "noncurrent_version_expiration": {"noncurrent_days": expire_days or noncurrent_days}}
    if expire_days:
        rule["expiration"] = {"days": expire_days}
    return rule


class PrivateBucket(pulumi.ComponentResource):
    """Encrypted, versioned, non-public, TLS-only bucket with its own rotating KMS key."""

    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning  # replication needs versioning on first

    def __init__(self, name: str, args: PrivateBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:storage:PrivateBucket", name, None, opts)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        child = pulumi.ResourceOptions(parent=self)
        context = args.context

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{name} bucket encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(context.account_id).apply(
                lambda account: key_policy(account, context.partition, args.log_delivery)),
            opts=stateful,
        )
        bucket = aws.s3.Bucket(f"{name}", force_destroy=False, opts=stateful)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                            "kms_master_key_id": key.arn},
                "bucket_key_enabled": True,
            }],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, context.account_id).apply(
                lambda a: bucket_policy(a[0], a[1], context.region, context.partition, args.log_delivery)),
            opts=child,
        )
        if args.expire_days or args.noncurrent_days:
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=bucket.id,
                rules=[lifecycle_rule(args.expire_days, args.noncurrent_days)],
                opts=child,
            )

        self.bucket_name = bucket.bucket
        self.arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn, "kms_key_arn": self.kms_key_arn})
