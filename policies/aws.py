"""AWS security rules: nodes, network, EKS, S3, IAM, SQS, logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from pulumi_policy import Severity

from catalog.eks import LOG_TYPES, RELEASES
from policies.support import (
    ADVISORY,
    as_list,
    cis,
    depends_on,
    eks_bp,
    of_type,
    resource_rule,
    stack_rule,
    statements,
)

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CLUSTER = "aws:eks/cluster:Cluster"
BUCKET = "aws:s3/bucket:Bucket"
OPEN = {"0.0.0.0/0", "::/0"}


# --- nodes ---------------------------------------------------------------------------------


def _imds(options: Mapping[str, Any] | None, tokens: str, hop: str) -> Iterator[str]:
    options = options or {}
    if options.get(tokens) != "required":
        yield f"IMDSv2 is not required ({tokens}={options.get(tokens)!r}); pods could steal node credentials via IMDSv1"
    if float(options.get(hop) or 2) > 1:
        yield f"{hop} is {options.get(hop)!r}; set 1 so containers cannot reach the node's metadata service"


launch_template_imdsv2 = resource_rule(
    "launch-template-imdsv2", "Node launch templates require IMDSv2 with hop limit 1.", LAUNCH_TEMPLATE,
    lambda p, c: _imds(p.get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit"),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set metadataOptions.httpTokens=required and httpPutResponseHopLimit=1 on the launch template.")

nodeclass_imdsv2 = resource_rule(
    "karpenter-nodeclass-imdsv2", "Karpenter EC2NodeClasses require IMDSv2 with hop limit 1.", NODECLASS,
    lambda p, c: _imds((p.get("spec") or {}).get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit"),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set spec.metadataOptions.httpTokens=required and httpPutResponseHopLimit=1.")


def _unencrypted(mappings: Any, truth: Any) -> Iterator[str]:
    for mapping in mappings or []:
        ebs = mapping.get("ebs") or {}
        if ebs.get("encrypted") not in truth:
            yield f"volume {mapping.get('deviceName')} is not encrypted; set ebs.encrypted"


launch_template_ebs_encrypted = resource_rule(
    "launch-template-ebs-encrypted", "Node volumes from launch templates are encrypted.", LAUNCH_TEMPLATE,
    lambda p, c: _unencrypted(p.get("blockDeviceMappings"), ("true", True)),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set blockDeviceMappings[].ebs.encrypted to true.")

nodeclass_ebs_encrypted = resource_rule(
    "karpenter-nodeclass-ebs-encrypted", "Node volumes from EC2NodeClasses are encrypted.", NODECLASS,
    lambda p, c: _unencrypted((p.get("spec") or {}).get("blockDeviceMappings"), (True,)),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set spec.blockDeviceMappings[].ebs.encrypted: true.")


def _lt_public_ip(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for nic in props.get("networkInterfaces") or []:
        if nic.get("associatePublicIpAddress") in ("true", True):
            yield "a network interface associates a public IP; nodes belong in private subnets"


launch_template_no_public_ip = resource_rule(
    "launch-template-no-public-ip", "Launch templates never give nodes a public IP.", LAUNCH_TEMPLATE, _lt_public_ip,
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Drop associatePublicIpAddress from networkInterfaces (or set it to false).")

nodeclass_no_public_ip = resource_rule(
    "karpenter-nodeclass-no-public-ip", "EC2NodeClasses explicitly turn public IPs off.", NODECLASS,
    lambda p, c: ([] if (p.get("spec") or {}).get("associatePublicIPAddress") is False else
                  ["spec.associatePublicIPAddress is not false; a public subnet would give nodes public IPs"]),
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Set spec.associatePublicIPAddress: false.")

subnet_no_auto_public_ip = resource_rule(
    "subnet-no-auto-public-ip", "Subnets do not map public IPs on launch.", "aws:ec2/subnet:Subnet",
    lambda p, c: (["mapPublicIpOnLaunch is true; every instance launched here gets a public IP"]
                  if p.get("mapPublicIpOnLaunch") is True else []),
    severity=Severity.MEDIUM, framework=eks_bp("security#infrastructure-security"),
    remediation="Set mapPublicIpOnLaunch=false; NAT gateways and load balancers bring their own addresses.")


def _open_ingress(rules: Any, allowed_ports: list[int]) -> Iterator[str]:
    for rule in rules:
        cidrs = {*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks")),
                 *as_list(rule.get("cidrIpv4")), *as_list(rule.get("cidrIpv6"))}
        open_to = cidrs & OPEN
        ports = (float(rule.get("fromPort", -1)), float(rule.get("toPort", -1)))
        if open_to and not (ports[0] == ports[1] and ports[0] in allowed_ports):
            yield (f"ingress from {', '.join(sorted(open_to))} on ports {ports[0]:.0f}-{ports[1]:.0f}; "
                   f"only {allowed_ports} may be open to the internet (load balancers)")


def _security_group_ingress(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    rules = props.get("ingress") or []
    if "type" in props:  # aws:ec2/securityGroupRule
        rules = [props] if props.get("type") == "ingress" else []
    elif "ipProtocol" in props:  # aws:vpc/securityGroupIngressRule
        rules = [props]
    yield from _open_ingress(rules, config["allowedPorts"])


security_group_no_open_ingress = resource_rule(
    "security-group-no-open-ingress", "No security group ingress from 0.0.0.0/0 or ::/0 except HTTPS.",
    ["aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
     "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"],
    _security_group_ingress, severity=Severity.CRITICAL,
    framework=eks_bp("security#network-security"),
    remediation="Restrict the source to the CIDRs that need access; only 443 on load balancers may be public.",
    config={"allowedPorts": {"type": "array", "items": {"type": "integer"}, "default": [443]}})


# --- EKS -------------------------------------------------------------------------------------


def _secrets_encryption(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    config = props.get("encryptionConfig") or {}
    if "secrets" not in (config.get("resources") or []) or not (config.get("provider") or {}).get("keyArn"):
        yield "Kubernetes secrets are not envelope-encrypted with a KMS key"


eks_secrets_encryption = resource_rule(
    "eks-secrets-encryption", "EKS encrypts Kubernetes secrets with a KMS key.", CLUSTER, _secrets_encryption,
    severity=Severity.HIGH, framework=cis("5.3.1", "Ensure Kubernetes Secrets are encrypted using CMKs managed in AWS KMS"),
    remediation="Set encryptionConfig {resources: [secrets], provider.keyArn: <rotating KMS key>}.")

kms_key_rotation = resource_rule(
    "kms-key-rotation", "Customer-managed KMS keys rotate yearly.", "aws:kms/key:Key",
    lambda p, c: [] if p.get("enableKeyRotation") is True else ["key rotation is off; set enableKeyRotation=true"],
    severity=Severity.MEDIUM, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set enableKeyRotation=true.")

eks_control_plane_logging = resource_rule(
    "eks-control-plane-logging", "EKS sends all five control-plane log types to CloudWatch.", CLUSTER,
    lambda p, c: ([f"control-plane logs missing: {', '.join(sorted(set(LOG_TYPES) - set(p.get('enabledClusterLogTypes') or [])))}"]
                  if set(LOG_TYPES) - set(p.get("enabledClusterLogTypes") or []) else []),
    severity=Severity.MEDIUM, framework=cis("2.1.1", "Enable audit Logs"),
    remediation="Set enabledClusterLogTypes to api, audit, authenticator, controllerManager, scheduler.")


def _endpoint(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    vpc = props.get("vpcConfig") or {}
    public = vpc.get("endpointPublicAccess", True) is not False
    if public and config["requirePrivate"]:
        yield "the API endpoint is public; this stack requires a private endpoint only"
    if public and (not vpc.get("publicAccessCidrs") or OPEN & set(vpc.get("publicAccessCidrs") or [])):
        yield "the public API endpoint is open to the internet; list the CIDRs that need access"
    if vpc.get("endpointPrivateAccess") is not True:
        yield "the private endpoint is off; nodes would reach the API over the internet"


eks_endpoint_access = resource_rule(
    "eks-endpoint-access", "The EKS API endpoint is private, or public only to an allow-list.", CLUSTER, _endpoint,
    severity=Severity.HIGH,
    framework=cis("5.4.1", "Restrict Access to the Control Plane Endpoint"),
    remediation="Enable the private endpoint; empty cluster.publicAccessCidrs (prod) or restrict it to known CIDRs.",
    config={"requirePrivate": {"type": "boolean", "default": False}})


def _version(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    version = props.get("version")
    release = RELEASES.get(version)
    today = date.fromisoformat(config["today"]) if config.get("today") else date.today()
    if release is None:
        yield f"EKS version {version} is not one this project supports ({', '.join(RELEASES)})"
    elif release.end_of_standard_support < today:
        yield (f"EKS {version} left standard support on {release.end_of_standard_support}; "
               f"extended support costs 6x per cluster-hour, upgrade")


eks_supported_version = resource_rule(
    "eks-supported-version", "The EKS version is in standard support.", CLUSTER, _version,
    severity=Severity.HIGH, framework=eks_bp("cluster-upgrades"),
    remediation="Upgrade cluster.version to a release listed in catalog/eks.py in standard support.",
    config={"today": {"type": ["string", "null"], "default": None,
                      "description": "Evaluate support as of this ISO date (default: today)."}})

eks_access_entries = resource_rule(
    "eks-access-entries", "EKS authenticates with access entries only (API mode).", CLUSTER,
    lambda p, c: ([] if (p.get("accessConfig") or {}).get("authenticationMode") == "API" else
                  [f"authenticationMode is {(p.get('accessConfig') or {}).get('authenticationMode')!r}; the aws-auth "
                   "ConfigMap is deprecated and unaudited, use API with access entries"]),
    severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Set accessConfig.authenticationMode=API and grant access with aws.eks.AccessEntry.")

eks_no_creator_admin = resource_rule(
    "eks-no-implicit-creator-admin", "The cluster creator gets no invisible admin grant.", CLUSTER,
    lambda p, c: (["bootstrapClusterCreatorAdminPermissions is on: whoever ran `pulumi up` is an admin that no "
                   "access entry shows"] if (p.get("accessConfig") or {}).get(
        "bootstrapClusterCreatorAdminPermissions") is not False else []),
    severity=Severity.MEDIUM, level=ADVISORY, framework=eks_bp("identity-and-access-management"),
    remediation="Set bootstrapClusterCreatorAdminPermissions=false and list admins in cluster.adminPrincipals.")

no_aws_auth_configmap = resource_rule(
    "eks-no-aws-auth-configmap", "No aws-auth ConfigMap: access is by access entries.", "kubernetes:core/v1:ConfigMap",
    lambda p, c: (["the aws-auth ConfigMap is deprecated; grant access with access entries"]
                  if (p.get("metadata") or {}).get("name") == "aws-auth" else []),
    severity=Severity.MEDIUM, framework=eks_bp("identity-and-access-management"),
    remediation="Delete the ConfigMap and create aws.eks.AccessEntry resources instead.")


# --- S3 -------------------------------------------------------------------------------------


def _each_has(target_type: str, attached_type: str, prop: str, ok: Any, problem: str):
    """Stack check: every `target_type` resource has an `attached_type` resource whose `prop`
    comes from it (engine property dependencies, so it works before IDs are known) satisfying `ok`."""

    def check(resources, _config) -> Iterator[tuple[str, str | None]]:
        attached = of_type(resources, attached_type)
        for target in of_type(resources, target_type):
            if not any(ok(a.props) for a in attached if depends_on(a, prop, target)):
                yield problem.format(name=target.name), target.urn
    return check


def _per_bucket(config_type: str, ok: Any, problem: str):
    return _each_has(BUCKET, config_type, "bucket", ok, f"bucket {{name}}: {problem}")


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
    remediation="Add a BucketPublicAccessBlock with all four settings true (components/storage.PrivateBucket).")

s3_kms_encryption = stack_rule(
    "s3-kms-encryption", "Every bucket encrypts with KMS by default.",
    _per_bucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                _kms_encrypted, "no default KMS encryption"),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Add a server-side encryption configuration with sseAlgorithm aws:kms.")

s3_versioning = stack_rule(
    "s3-versioning", "Every bucket is versioned.",
    _per_bucket("aws:s3/bucketVersioning:BucketVersioning",
                lambda p: (p.get("versioningConfiguration") or {}).get("status") == "Enabled", "versioning is off"),
    severity=Severity.MEDIUM, framework=eks_bp("reliability"),
    remediation="Add a BucketVersioning with status Enabled; deleted backups stay recoverable.")

s3_deny_insecure_transport = stack_rule(
    "s3-deny-insecure-transport", "Every bucket policy denies non-TLS requests.",
    _per_bucket("aws:s3/bucketPolicy:BucketPolicy", lambda p: _denies_plain_http(p.get("policy")),
                "plain-HTTP requests are not denied"),
    severity=Severity.HIGH, framework=eks_bp("security#encryption-in-transit"),
    remediation="Add a Deny statement on s3:* with Condition Bool aws:SecureTransport=false.")

s3_no_force_destroy = resource_rule(
    "s3-no-force-destroy", "Buckets are never force-destroyed with their objects.", BUCKET,
    lambda p, c: ["forceDestroy is on: `pulumi destroy` would delete every object"] if p.get("forceDestroy") else [],
    severity=Severity.HIGH, framework=eks_bp("reliability"),
    remediation="Set forceDestroy=false; empty a bucket deliberately before deleting it.")


# --- IAM ------------------------------------------------------------------------------------

POLICY_TYPES = ["aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"]


def _allows(statement: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    if statement.get("Effect") != "Allow":
        return [], []
    return [str(a) for a in as_list(statement.get("Action"))], [str(r) for r in as_list(statement.get("Resource"))]


def _admin(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("policy")):
        actions, resources = _allows(statement)
        if "*" in resources and any(a in ("*", "*:*") for a in actions):
            yield f"statement {statement.get('Sid', '')!r} allows every action on every resource"


iam_no_admin = resource_rule(
    "iam-no-wildcard-admin", "No IAM policy allows Action * on Resource *.", POLICY_TYPES, _admin,
    severity=Severity.CRITICAL, framework=eks_bp("identity-and-access-management"),
    remediation="List the actions the principal needs and scope Resource to the ARNs it uses.")


def _service_wildcards(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("policy")):
        actions, resources = _allows(statement)
        broad = [a for a in actions if a.endswith(":*")]
        if broad and "*" in resources and not statement.get("Condition"):
            yield f"statement {statement.get('Sid', '')!r} allows {', '.join(broad)} on every resource"


iam_no_service_wildcards = resource_rule(
    "iam-no-service-wildcards", "No IAM policy allows service:* on every resource without a condition.",
    POLICY_TYPES, _service_wildcards, severity=Severity.HIGH, framework=eks_bp("identity-and-access-management"),
    remediation="Name the actions, or scope the resources or add a condition.")


def _trust(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for statement in statements(props.get("assumeRolePolicy")):
        principal = statement.get("Principal") or {}
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        condition = statement.get("Condition") or {}
        equals = condition.get("StringEquals") or {}
        if "pods.eks.amazonaws.com" in services:
            pinned = equals.get("aws:RequestTag/kubernetes-service-account") and equals.get(
                "aws:RequestTag/kubernetes-namespace")
            if not pinned:
                yield "a Pod Identity trust policy does not pin kubernetes-namespace and kubernetes-service-account"
        if isinstance(principal, Mapping) and principal.get("Federated") and "oidc-provider" in str(principal.get("Federated")):
            subjects = [v for k, v in equals.items() if str(k).endswith(":sub")]
            if not subjects or any("*" in str(s) for s in subjects):
                yield "an IRSA trust policy does not pin one system:serviceaccount:<namespace>:<name> subject"


iam_trust_one_service_account = resource_rule(
    "iam-trust-one-service-account", "Roles for Kubernetes service accounts trust exactly one service account.",
    "aws:iam/role:Role", _trust, severity=Severity.HIGH,
    framework=eks_bp("identity-and-access-management#scope-the-iam-role-trust-policy-for-irsa-roles-to-the-service-account-name"),
    remediation="Condition the trust on aws:RequestTag/kubernetes-namespace and -service-account "
                "(Pod Identity) or on <issuer>:sub (IRSA).")


# --- queues, logs, flow logs -----------------------------------------------------------------

sqs_encrypted = resource_rule(
    "sqs-encrypted", "SQS queues are encrypted at rest.", "aws:sqs/queue:Queue",
    lambda p, c: ([] if p.get("sqsManagedSseEnabled") is True or p.get("kmsMasterKeyId") else
                  ["the queue is not encrypted; set sqsManagedSseEnabled=true or a KMS key"]),
    severity=Severity.MEDIUM, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set sqsManagedSseEnabled=true (or kmsMasterKeyId).")


sqs_deny_insecure_transport = stack_rule(
    "sqs-deny-insecure-transport", "Every queue policy denies non-TLS requests.",
    _each_has("aws:sqs/queue:Queue", "aws:sqs/queuePolicy:QueuePolicy", "queueUrl",
              lambda p: _denies_plain_http(p.get("policy")), "queue {name}: plain-HTTP access is not denied"),
    severity=Severity.MEDIUM, framework=eks_bp("security#encryption-in-transit"),
    remediation="Add a QueuePolicy with a Deny on sqs:* when aws:SecureTransport is false.")


def _retention(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    days = props.get("retentionInDays")
    if not days:
        yield "logs are kept forever; set retentionInDays"
    elif float(days) < config["minimumDays"]:
        yield f"logs are kept {float(days):.0f} days; keep at least {config['minimumDays']} for investigations"


log_group_retention = resource_rule(
    "log-group-retention", "Log groups keep logs for a finite, sufficient time.", "aws:cloudwatch/logGroup:LogGroup",
    _retention, severity=Severity.LOW, framework=cis("2.1.1", "Enable audit Logs"),
    remediation="Set retentionInDays to a CloudWatch retention period of at least minimumDays.",
    config={"minimumDays": {"type": "integer", "default": 7}})


vpc_flow_logs = stack_rule(
    "vpc-flow-logs", "Every VPC records flow logs of all traffic.",
    _each_has("aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog", "vpcId", lambda p: p.get("trafficType") == "ALL",
              "VPC {name} has no flow log capturing ALL traffic"),
    severity=Severity.MEDIUM, framework=eks_bp("security#network-security"),
    remediation="Add an aws.ec2.FlowLog with trafficType ALL (network.flowLogs config).")


def _private_cidr(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    cidr = props.get("cidrBlock")
    if cidr and not ipaddress.ip_network(cidr).is_private:
        yield f"VPC CIDR {cidr} is not a private range"


vpc_private_range = resource_rule(
    "vpc-private-cidr", "VPCs use private (RFC 1918) address space.", "aws:ec2/vpc:Vpc", _private_cidr,
    severity=Severity.LOW, framework=eks_bp("networking"),
    remediation="Use a 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 range for network.cidr.")


RULES = [
    launch_template_imdsv2, nodeclass_imdsv2, launch_template_ebs_encrypted, nodeclass_ebs_encrypted,
    launch_template_no_public_ip, nodeclass_no_public_ip, subnet_no_auto_public_ip, security_group_no_open_ingress,
    eks_secrets_encryption, kms_key_rotation, eks_control_plane_logging, eks_endpoint_access, eks_supported_version,
    eks_access_entries, eks_no_creator_admin, no_aws_auth_configmap, s3_block_public_access, s3_kms_encryption,
    s3_versioning, s3_deny_insecure_transport, s3_no_force_destroy, iam_no_admin, iam_no_service_wildcards,
    iam_trust_one_service_account, sqs_encrypted, sqs_deny_insecure_transport, log_group_retention, vpc_flow_logs,
    vpc_private_range,
]
