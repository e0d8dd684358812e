"""Every rule both ways: a compliant input passes, one mutation fails with a message that says why.

AWS and cost rules start from the real stacks' recorded resources; workload
rules from a compliant model-server Deployment. Each case runs only its rule,
through the same offline runner `mlp check` uses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from policy_harness import aws_provider, findings, resource

from policies.pack import RULES

BY_NAME = {rule.name: rule for rule in RULES}
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
TAGS = {"environment": "test", "project": "ml-platform", "owner": "team", "cost-center": "cc"}


@dataclass
class Case:
    passing: Callable[[Any, Any], list]  # (dev, prod) -> resources
    mutate: Callable[[list], None]
    expected: str
    config: dict | None = None


def pick(resources: list, type_: str, name: str | None = None):
    """The resource of `type_` named `name`, or the first by name (the engine records in no fixed order)."""
    return min((r for r in resources if r.type == type_ and (name is None or r.name == name)), key=lambda r: r.name)


@dataclass(frozen=True)
class stack:  # noqa: N801 - reads as the function it replaces: stack("prod")
    """A real stack's resources, copied: all of them, or for a resource rule only those it can see."""

    which: str

    def __call__(self, dev, prod, types: frozenset[str] | None = None) -> list:
        resources = {"dev": dev, "prod": prod}[self.which].resources
        if types is not None:  # the runner gives a resource rule nothing else (providers: its provider)
            resources = [r for r in resources if r.type in types or r.type.startswith("pulumi:providers:")]
        return copy.deepcopy(resources)


def passing(name: str, dev, prod) -> list:
    case = CASES[name]
    if isinstance(case.passing, stack):
        return case.passing(dev, prod, getattr(BY_NAME[name], "resource_types", None))
    return case.passing(dev, prod)


def deployment(**pod_overrides: Any) -> dict:
    container = {
        "name": "vllm", "image": "vllm/vllm-openai:v0.11.0",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "4", "memory": "14Gi", "nvidia.com/gpu": "1"},
                      "limits": {"memory": "14Gi", "nvidia.com/gpu": "1"}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}],
    }
    pod = {"serviceAccountName": "vllm", "securityContext": {"runAsNonRoot": True},
           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}],
           "containers": [container], **pod_overrides}
    return {"metadata": {"name": "vllm", "namespace": "serving"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "vllm"}},
                     "template": {"metadata": {"labels": {"app": "vllm"}}, "spec": pod}}}


def workload(dev, prod) -> list:
    pdb = resource("kubernetes:policy/v1:PodDisruptionBudget", "vllm", {
        "metadata": {"name": "vllm", "namespace": "serving"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "vllm"}}}})
    return [resource("kubernetes:apps/v1:Deployment", "vllm", deployment()), pdb]


def container(resources: list) -> dict:
    return resources[0].inputs["spec"]["template"]["spec"]["containers"][0]


def pod(resources: list) -> dict:
    return resources[0].inputs["spec"]["template"]["spec"]


def single(type_: str, inputs: dict) -> Callable[[Any, Any], list]:
    return lambda dev, prod: [resource(type_, "subject", copy.deepcopy(inputs))]


def nodepool(resources: list, name: str = "training") -> dict:
    return next(r for r in resources if r.type == "kubernetes:karpenter.sh/v1:NodePool"
                and r.inputs["metadata"]["name"] == name).inputs["spec"]


def nodeclass(resources: list, name: str = "training") -> dict:
    return next(r for r in resources if r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
                and r.inputs["metadata"]["name"] == name).inputs["spec"]


def requirement(spec: dict, key: str) -> dict:
    return next(r for r in spec["template"]["spec"]["requirements"] if r["key"] == key)


def managed_gpu_group(dev, prod) -> list:
    group = copy.deepcopy(pick(dev.resources, "aws:eks/nodeGroup:NodeGroup"))
    group.inputs.update(instanceTypes=["g5.xlarge"], capacityType="SPOT",
                        scalingConfig={"minSize": 0, "desiredSize": 0, "maxSize": 2})
    return [group]


LT = "aws:ec2/launchTemplate:LaunchTemplate"
CLUSTER = "aws:eks/cluster:Cluster"
INSTANCE = "aws:ec2/instance:Instance"
HARDENED_INSTANCE = {"ami": "ami-0abc", "instanceType": "m6i.large",
                     "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
                     "rootBlockDevice": {"encrypted": True, "volumeType": "gp3"}}


def cni_policy_on_node_role(resources: list) -> None:
    role = pick(resources, "aws:iam/role:Role", "eks-node")
    resources.append(resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-node-cni", {
        "role": role.inputs.get("name", "eks-node"), "policyArn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"},
        role=[role]))

CASES: dict[str, Case] = {
    "launch-template-imdsv2": Case(stack("prod"), lambda rs: pick(rs, LT).inputs["metadataOptions"].update(
        httpTokens="optional"), "IMDSv2 is not required"),
    "karpenter-nodeclass-imdsv2": Case(stack("prod"), lambda rs: nodeclass(rs)["metadataOptions"].update(
        httpPutResponseHopLimit=2), "httpPutResponseHopLimit is 2"),
    "launch-template-ebs-encrypted": Case(stack("prod"), lambda rs: pick(rs, LT).inputs["blockDeviceMappings"][0][
        "ebs"].update(encrypted="false"), "volume /dev/xvda is not encrypted"),
    "karpenter-nodeclass-ebs-encrypted": Case(stack("prod"), lambda rs: nodeclass(rs)["blockDeviceMappings"][0][
        "ebs"].update(encrypted=False), "volume /dev/xvda is not encrypted"),
    "node-group-launch-template": Case(stack("prod"), lambda rs: pick(rs, "aws:eks/nodeGroup:NodeGroup").inputs.pop(
        "launchTemplate"), "no launch template, so EKS launches the nodes from its default one"),
    "instance-imdsv2": Case(single(INSTANCE, HARDENED_INSTANCE), lambda rs: rs[0].inputs.pop("metadataOptions"),
                            "metadataOptions is unset, so the AMI decides"),
    "instance-ebs-encrypted": Case(single(INSTANCE, HARDENED_INSTANCE), lambda rs: rs[0].inputs.pop("rootBlockDevice"),
                                   "rootBlockDevice is unset, so the root volume comes from the AMI's snapshot"),
    "iam-cni-policy-not-on-node-role": Case(stack("prod"), cni_policy_on_node_role,
                                            "eks-node: the node role carries AmazonEKS_CNI_Policy"),
    "launch-template-no-public-ip": Case(stack("prod"), lambda rs: pick(rs, LT).inputs.update(
        networkInterfaces=[{"associatePublicIpAddress": "true"}]), "associates a public IP"),
    "karpenter-nodeclass-no-public-ip": Case(stack("prod"), lambda rs: nodeclass(rs, "cpu").pop(
        "associatePublicIPAddress"), "spec.associatePublicIPAddress is not false"),
    "subnet-no-auto-public-ip": Case(stack("dev"), lambda rs: pick(rs, "aws:ec2/subnet:Subnet").inputs.update(
        mapPublicIpOnLaunch=True), "mapPublicIpOnLaunch is true"),
    "security-group-no-open-ingress": Case(
        single("aws:ec2/securityGroup:SecurityGroup",
               {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]}),
        lambda rs: rs[0].inputs["ingress"].append(
            {"protocol": "tcp", "fromPort": 22, "toPort": 22, "ipv6CidrBlocks": ["::/0"]}),
        "ingress from ::/0 on ports 22-22"),
    "eks-secrets-encryption": Case(stack("prod"), lambda rs: pick(rs, CLUSTER).inputs.pop("encryptionConfig"),
                                   "secrets are not envelope-encrypted"),
    "kms-key-rotation": Case(stack("prod"), lambda rs: pick(rs, "aws:kms/key:Key").inputs.update(
        enableKeyRotation=False), "key rotation is off"),
    "eks-control-plane-logging": Case(stack("dev"), lambda rs: pick(rs, CLUSTER).inputs.update(
        enabledClusterLogTypes=["api"]), "control-plane logs missing: audit, authenticator"),
    "eks-endpoint-access": Case(stack("prod"), lambda rs: pick(rs, CLUSTER).inputs["vpcConfig"].update(
        endpointPublicAccess=True), "this stack requires a private endpoint only", {"requirePrivate": True}),
    "eks-supported-version": Case(stack("dev"), lambda rs: pick(rs, CLUSTER).inputs.update(version="1.34"),
                                  "EKS 1.34 left standard support on 2026-12-02", {"today": "2026-12-20"}),
    "eks-access-entries": Case(stack("dev"), lambda rs: pick(rs, CLUSTER).inputs["accessConfig"].update(
        authenticationMode="API_AND_CONFIG_MAP"), "authenticationMode is 'API_AND_CONFIG_MAP'"),
    "eks-no-implicit-creator-admin": Case(stack("dev"), lambda rs: pick(rs, CLUSTER).inputs["accessConfig"].update(
        bootstrapClusterCreatorAdminPermissions=True), "whoever ran `pulumi up` is an admin"),
    "eks-no-aws-auth-configmap": Case(
        single("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "platform-config", "namespace": "kube-system"}}),
        lambda rs: rs[0].inputs["metadata"].update(name="aws-auth"), "the aws-auth ConfigMap is deprecated"),
    "s3-block-public-access": Case(stack("prod"), lambda rs: pick(
        rs, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "backup-bucket-public-access").inputs.update(
        restrictPublicBuckets=False), "bucket backup-bucket: public access is not fully blocked"),
    "s3-kms-encryption": Case(stack("prod"), lambda rs: rs.remove(pick(
        rs, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "backup-bucket-us-west-2-encryption")), "bucket backup-bucket-us-west-2: no default KMS encryption"),
    "s3-versioning": Case(stack("prod"), lambda rs: pick(rs, "aws:s3/bucketVersioning:BucketVersioning",
                                                         "backup-bucket-versioning").inputs[
        "versioningConfiguration"].update(status="Suspended"), "bucket backup-bucket: versioning is off"),
    "s3-deny-insecure-transport": Case(stack("prod"), lambda rs: pick(
        rs, "aws:s3/bucketPolicy:BucketPolicy", "network-flow-logs-policy").inputs.update(policy='{"Statement": []}'),
        "bucket network-flow-logs: plain-HTTP requests are not denied"),
    "s3-no-force-destroy": Case(stack("prod"), lambda rs: pick(rs, "aws:s3/bucket:Bucket").inputs.update(
        forceDestroy=True), "forceDestroy is on"),
    "s3-acls-disabled": Case(stack("prod"), lambda rs: pick(
        rs, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "backup-bucket-ownership").inputs.update(
        rule={"objectOwnership": "ObjectWriter"}), "bucket backup-bucket: ACLs are enabled"),
    "s3-no-public-acl": Case(stack("dev"), lambda rs: rs.append(resource(
        "aws:s3/bucketAcl:BucketAcl", "open", {"bucket": "b", "accessControlPolicy": {"grants": [
            {"grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
             "permission": "READ"}]}})), "an ACL grant to AllUsers makes the bucket public"),
    "ebs-encrypted": Case(single("aws:ebs/volume:Volume", {"availabilityZone": "us-east-1a", "size": 100,
                                                           "encrypted": True, "kmsKeyId": "arn:aws:kms:k"}),
                          lambda rs: rs[0].inputs.pop("encrypted"), "the volume is not encrypted"),
    "velero-schedule-coverage": Case(stack("prod"), lambda rs: pick(
        rs, "kubernetes:velero.io/v1:Schedule", "backup-teams").inputs["spec"]["template"].update(
        includedNamespaces=["ml-inference", "ml-jobs"]),
        "namespace ml-training is in no Velero schedule: its objects and volumes are never backed up"),
    "prometheus-alert-metadata": Case(stack("dev"), lambda rs: pick(
        rs, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "observability-rules").inputs["spec"]["groups"][0][
        "rules"][0][
        "annotations"].pop("runbook_url"), "alert GpuIdle has no runbook_url"),
    "alertmanager-receiver-secrets": Case(stack("prod"), lambda rs: pick(
        rs, "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig").inputs["spec"]["receivers"].append(
        {"name": "ops", "webhookConfigs": [{"url": "https://hooks.example.com/T000/B000/XXXX"}]}),
        "spec.receivers[4].webhookConfigs[0].url holds a receiver credential in plain text"),
    "k8s-storageclass-encrypted": Case(stack("dev"), lambda rs: pick(
        rs, "kubernetes:storage.k8s.io/v1:StorageClass").inputs["parameters"].pop("encrypted"),
        "StorageClass gp3 provisions unencrypted EBS volumes"),
    "monitoring-volumes-encrypted": Case(stack("prod"), lambda rs: pick(
        rs, "kubernetes:helm.sh/v3:Release", "observability-stack").inputs["values"]["prometheus"][
        "prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"].update(storageClassName="gp2"),
        "prometheus's volume uses StorageClass gp2, which the stack does not define as encrypted"),
    "k8s-gpu-request-equals-limit": Case(workload, lambda rs: container(rs)["resources"]["requests"].update(
        {"nvidia.com/gpu": "2"}), "container vllm requests 2 and limits 1 nvidia.com/gpu: the API server rejects"),
    "k8s-gpu-server-network-policy": Case(stack("prod"), lambda rs: rs.remove(pick(
        rs, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "serving-llama-3-1-8b")),
        "GPU server ml-inference/llama-3-1-8b has no NetworkPolicy of its own admitting its callers"),
    "keda-max-within-pool": Case(stack("dev"), lambda rs: pick(
        rs, "kubernetes:keda.sh/v1alpha1:ScaledObject").inputs["spec"].update(maxReplicaCount=40),
        "ScaledObject qwen-1-5b may run 40 replicas of 1 GPUs (40), more than pool inference holds (16)"),
    "k8s-cronjob-bounded": Case(stack("dev"), lambda rs: pick(rs, "kubernetes:batch/v1:CronJob").inputs[
        "spec"].pop("concurrencyPolicy"), "CronJob evaluate-qwen-1-5b allows overlapping runs"),
    "k8s-cronjob-image-digest": Case(stack("dev"), lambda rs: pick(rs, "kubernetes:batch/v1:CronJob").inputs[
        "spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].update(image="lm-eval:v1"),
        "container lm-eval runs lm-eval:v1, not pinned by digest"),
    "iam-no-wildcard-admin": Case(stack("dev"), lambda rs: pick(rs, "aws:iam/rolePolicy:RolePolicy").inputs.update(
        policy='{"Statement": [{"Sid": "Oops", "Effect": "Allow", "Action": "*", "Resource": "*"}]}'),
        "statement 'Oops' allows every action on every resource"),
    "iam-no-service-wildcards": Case(stack("dev"), lambda rs: pick(rs, "aws:iam/rolePolicy:RolePolicy").inputs.update(
        policy='{"Statement": [{"Sid": "S3", "Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]}'),
        "statement 'S3' allows s3:* on every resource"),
    "iam-trust-one-service-account": Case(stack("dev"), lambda rs: pick(rs, "aws:iam/role:Role", "karpenter-controller")
        .inputs.update(assumeRolePolicy='{"Statement": [{"Effect": "Allow", "Principal": {"Service": '
                                        '"pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}'),
        "does not pin kubernetes-namespace and kubernetes-service-account"),
    "sqs-encrypted": Case(stack("dev"), lambda rs: pick(rs, "aws:sqs/queue:Queue").inputs.update(
        sqsManagedSseEnabled=False), "the queue is not encrypted"),
    "sqs-deny-insecure-transport": Case(stack("dev"), lambda rs: rs.remove(pick(rs, "aws:sqs/queuePolicy:QueuePolicy")),
                                        "queue karpenter-interruption: plain-HTTP access is not denied"),
    "log-group-retention": Case(stack("dev"), lambda rs: pick(rs, "aws:cloudwatch/logGroup:LogGroup").inputs.pop(
        "retentionInDays"), "logs are kept forever"),
    "vpc-flow-logs": Case(stack("dev"), lambda rs: rs.remove(pick(rs, "aws:ec2/flowLog:FlowLog")),
                          "VPC network-vpc has no flow log capturing ALL traffic"),
    "vpc-private-cidr": Case(stack("dev"), lambda rs: pick(rs, "aws:ec2/vpc:Vpc").inputs.update(cidrBlock="8.8.0.0/16"),
                             "VPC CIDR 8.8.0.0/16 is not a private range"),
    # Kubernetes workloads
    "k8s-no-privileged": Case(workload, lambda rs: container(rs)["securityContext"].update(privileged=True),
                              "container vllm is privileged"),
    "k8s-no-privilege-escalation": Case(workload, lambda rs: container(rs)["securityContext"].pop(
        "allowPrivilegeEscalation"), "container vllm does not set allowPrivilegeEscalation: false"),
    "k8s-run-as-non-root": Case(workload, lambda rs: pod(rs).pop("securityContext"), "container vllm may run as root"),
    "k8s-drop-all-capabilities": Case(workload, lambda rs: container(rs)["securityContext"].pop("capabilities"),
                                      "container vllm does not drop ALL capabilities"),
    "k8s-no-host-namespaces": Case(workload, lambda rs: pod(rs).update(hostNetwork=True),
                                   "shares the node's Network namespace"),
    "k8s-no-host-path": Case(workload, lambda rs: pod(rs).update(volumes=[{"name": "models", "hostPath": {
        "path": "/mnt/models"}}]), "volume models mounts the host path /mnt/models"),
    "k8s-resources-set": Case(workload, lambda rs: container(rs)["resources"].pop("limits"),
                              "container vllm sets no limits for memory"),
    "k8s-image-pinned": Case(workload, lambda rs: container(rs).update(image="vllm/vllm-openai:latest"),
                             "image 'vllm/vllm-openai:latest' is not pinned"),
    "k8s-deployment-probes": Case(workload, lambda rs: container(rs).pop("readinessProbe"),
                                  "container vllm has no readinessProbe"),
    "k8s-gpu-requests-tolerate-gpu-taint": Case(workload, lambda rs: pod(rs).pop("tolerations"),
                                                "does not tolerate the GPU taint; it will never schedule"),
    "k8s-pdb-for-replicated-deployments": Case(workload, lambda rs: rs.pop(),
                                               "deployment vllm runs several replicas with no PodDisruptionBudget"),
    "k8s-namespace-pod-security": Case(stack("dev"), lambda rs: pick(rs, "kubernetes:core/v1:Namespace",
                                                                     "gpu-namespace").inputs[
        "metadata"].update(labels={}), "namespace gpu has no pod-security.kubernetes.io/enforce label"),
    "k8s-internal-load-balancers": Case(
        single("kubernetes:core/v1:Service", {"metadata": {"name": "vllm", "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}, "spec": {"type": "LoadBalancer"}}),
        lambda rs: rs[0].inputs["metadata"].pop("annotations"), "service vllm gets an internet-facing load balancer"),
    "k8s-no-literal-secret-env": Case(workload, lambda rs: container(rs)["env"].append(
        {"name": "WANDB_API_KEY", "value": "abc123"}), "sets WANDB_API_KEY as a literal"),
    "k8s-no-secret-manifests": Case(
        single("kubernetes:core/v1:Secret", {"metadata": {"name": "hub-token"}, "type": "Opaque"}),
        lambda rs: rs[0].inputs.update(stringData={"token": "hf_abc"}), "puts its value in Pulumi state"),
    "helm-chart-pinned": Case(stack("dev"), lambda rs: pick(rs, "kubernetes:helm.sh/v3:Release").inputs.update(
        version="^1.14"), "version '^1.14' is not an exact version"),
    "k8s-namespace-default-deny": Case(stack("dev"), lambda rs: rs.remove(pick(
        rs, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "gpu-namespace-default-deny")),
        "namespace gpu has no default-deny NetworkPolicy"),
    "k8s-no-default-namespace": Case(workload, lambda rs: rs[0].inputs["metadata"].pop("namespace"),
                                     "vllm runs in the default namespace"),
    "k8s-no-default-service-account-token": Case(workload, lambda rs: pod(rs).pop("serviceAccountName"),
                                                 "runs as the default service account with its token mounted"),
    # Cost
    "cost-allowed-instance-families": Case(stack("dev"), lambda rs: requirement(nodepool(rs), "node.kubernetes.io/"
                                           "instance-type")["values"].append("p5.48xlarge"),
                                           "p5.48xlarge not in this stack's allowed families",
                                           {"allowedFamilies": ["c6i", "c7i", "m6i", "p4d", "g5"]}),
    "cost-allowed-gpu-models": Case(stack("dev"), lambda rs: requirement(nodepool(rs), "node.kubernetes.io/"
                                    "instance-type")["values"].append("p5.48xlarge"),
                                    "p5.48xlarge carries a GPU model this stack does not allow"),
    "cost-nodepool-limits": Case(stack("dev"), lambda rs: nodepool(rs)["limits"].pop("nvidia.com/gpu"),
                                 "NodePool has no limit on nvidia.com/gpu"),
    "cost-gpu-scale-to-zero": Case(managed_gpu_group, lambda rs: rs[0].inputs["scalingConfig"].update(minSize=1),
                                   "keeps 1 nodes running when idle", {"required": True}),
    "cost-gpu-spot": Case(stack("dev"), lambda rs: requirement(nodepool(rs, "inference"), "karpenter.sh/capacity-type")
                          .update(values=["on-demand"]), "a GPU pool runs on-demand only", {"required": True}),
    "cost-max-pool-size": Case(stack("dev"), lambda rs: nodepool(rs, "cpu")["limits"].update(cpu="1000"),
                               "the pool may grow to 80 nodes; this stack allows 50", {"maxNodes": 50}),
    "cost-max-gpus": Case(stack("dev"), lambda rs: nodepool(rs)["limits"].update(
        **{"nvidia.com/gpu": "64", "cpu": "768", "memory": "9216Gi"}),
                          "the stack may run 68 GPUs; its cap is 24", {"maxGpus": 24}),
    "cost-ebs-volume-cap": Case(stack("prod"), lambda rs: nodeclass(rs)["blockDeviceMappings"][0]["ebs"].update(
        volumeSize="4000Gi"), "volume /dev/xvda is 4000 GiB per node; the cap is 2000 GiB"),
    "cost-nat-gateway-count": Case(stack("dev"), lambda rs: rs.append(resource(
        "aws:ec2/natGateway:NatGateway", "network-nat-us-east-1b", {})), "2 NAT gateways", {"maxNatGateways": 1}),
    "aws-required-tags": Case(
        lambda dev, prod: [aws_provider(TAGS), resource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})],
        lambda rs: rs.__setitem__(0, aws_provider({"environment": "test"})),
        "missing cost-allocation tags project, owner, cost-center"),
    "cost-node-tags": Case(stack("prod"), lambda rs: nodeclass(rs)["tags"].pop("cost-center"),
                           "nodes launched from this template miss cost-allocation tags cost-center"),
    "cost-monthly-budget": Case(stack("dev"), lambda rs: nodepool(rs)["limits"].update(
        **{"nvidia.com/gpu": "160", "cpu": "1920", "memory": "23040Gi"}),
        "monthly ceiling $", {"monthlyBudgetUsd": 25000}),
    "k8s-rbac-no-wildcards": Case(stack("dev"), lambda rs: pick(
        rs, ROLE, "tenancy-ml-jobs-engineer").inputs["rules"][0].update(verbs=["*"]),
        "role ml-platform:engineer grants '*' in verbs"),
    "k8s-no-cluster-admin-binding": Case(stack("dev"), lambda rs: pick(
        rs, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs["roleRef"].update(name="cluster-admin"),
        "grants cluster-admin; platform admins get it through the EKS cluster-admin access policy"),
    "k8s-rbac-secrets-narrow": Case(stack("dev"), lambda rs: pick(rs, ROLE, "tenancy-ml-jobs-engineer").inputs[
        "rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}),
        "role ml-platform:engineer may list every Secret of its namespace"),
    "k8s-read-only-roles-read-only": Case(stack("dev"), lambda rs: pick(rs, ROLE, "tenancy-ml-jobs-read-only").inputs[
        "rules"].append({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}),
        "read-only role ml-platform:read-only reaches pods/exec"),
    "k8s-namespace-gpu-quota": Case(stack("dev"), lambda rs: rs.remove(pick(
        rs, "kubernetes:core/v1:ResourceQuota", "tenancy-ml-jobs-quota")),
        "namespace ml-jobs has no ResourceQuota with requests.nvidia.com/gpu"),
    "secretsmanager-customer-key": Case(stack("dev"), lambda rs: pick(
        rs, "aws:secretsmanager/secret:Secret", "secrets-hub-token").inputs.pop("kmsKeyId"),
        "secret ml-platform/dev/hub-token is encrypted with the AWS-managed key"),
    "secretsmanager-replicated": Case(stack("prod"), lambda rs: pick(
        rs, "aws:secretsmanager/secret:Secret", "secrets-hub-token").inputs.pop("replicas"),
        "secret ml-platform/prod/hub-token has no replica: it is lost with its region", {"required": True}),
    "cost-region-priced": Case(stack("dev"), lambda rs: pick(rs, "pulumi:providers:aws").inputs.update(
        region="mx-central-1"), "no prices are recorded for mx-central-1: the estimate and the budget use us-east-1"),
    "cost-eks-standard-support-only": Case(stack("dev"), lambda rs: pick(rs, CLUSTER).inputs.pop("upgradePolicy"),
                                           "upgradePolicy.supportType is not STANDARD"),
}


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(BY_NAME)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_passes_compliant_input(name, dev, prod):
    case = CASES[name]
    assert findings(BY_NAME[name], passing(name, dev, prod), case.config) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_rejects_the_mutation_with_a_clear_message(name, dev, prod):
    case = CASES[name]
    resources = passing(name, dev, prod)
    case.mutate(resources)
    found = findings(BY_NAME[name], resources, case.config)
    assert found, f"{name} did not fire"
    assert any(case.expected in f.message for f in found), [f.message for f in found]
    assert all(f.rule == name for f in found)


def test_missing_tags_are_remediated_when_the_pack_knows_their_values():
    resources = [aws_provider({"environment": "test"}), resource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})]
    defaults = {"enforcementLevel": "remediate", "defaults": {"project": "ml-platform", "owner": "team",
                                                              "cost-center": "cc"}}
    (found,) = findings(BY_NAME["aws-required-tags"], resources, defaults)
    assert (found.level, found.resource) == ("remediated", "vpc")
    (partial,) = findings(BY_NAME["aws-required-tags"], resources, {"enforcementLevel": "remediate",
                                                                    "defaults": {"project": "ml-platform"}})
    assert partial.level == "mandatory", "a remediation that cannot fix everything leaves a mandatory violation"


def test_a_team_namespace_may_not_relax_pod_security_without_a_waiver(dev):
    resources = copy.deepcopy(dev.resources)
    labels = pick(resources, "kubernetes:core/v1:Namespace", "tenancy-ml-training").inputs["metadata"]["labels"]
    labels["pod-security.kubernetes.io/enforce"] = "privileged"
    (found,) = findings(BY_NAME["k8s-namespace-pod-security"], resources)
    assert found.message.startswith("namespace ml-training enforces privileged without a waiver")
    assert not findings(BY_NAME["k8s-namespace-pod-security"], resources, {"waivers": {
        "gpu": "privileged", "velero": "baseline", "monitoring": "privileged", "ml-training": "privileged"}})


def test_a_service_account_that_mounts_a_token_needs_a_reason(dev):
    resources = copy.deepcopy(dev.resources)
    account = pick(resources, "kubernetes:core/v1:ServiceAccount", "tenancy-ml-jobs-workload")
    rule = BY_NAME["k8s-no-default-service-account-token"]
    assert not findings(rule, resources)
    account.inputs["automountServiceAccountToken"] = True
    (found,) = findings(rule, resources)
    assert found.message.startswith("service account workload mounts an API token into every pod")
    account.inputs["metadata"]["labels"] = {"ml-platform/api-access": "true"}
    assert not findings(rule, resources), "a workload that calls the API says so"


def test_a_launch_template_that_leaves_imds_and_the_root_volume_out_gets_the_weak_defaults_named(prod):
    resources = copy.deepcopy(prod.resources)
    template = pick(resources, LT)
    template.inputs.pop("metadataOptions")
    template.inputs.pop("blockDeviceMappings")
    (imds,) = findings(BY_NAME["launch-template-imdsv2"], resources)
    assert imds.message.startswith("metadataOptions is unset, so the AMI decides: IMDSv1 allowed")
    assert imds.resource == template.name
    (root,) = findings(BY_NAME["launch-template-ebs-encrypted"], resources)
    assert "no block device mapping for the root volume (/dev/xvda)" in root.message
    assert "encrypted only if the account's EBS encryption by default is on" in root.message
    template.inputs["blockDeviceMappings"] = [{"deviceName": "/dev/xvda", "ebs": {"volumeType": "gp3"}}]
    (unset,) = findings(BY_NAME["launch-template-ebs-encrypted"], resources)
    assert unset.message.startswith("volume /dev/xvda leaves ebs.encrypted unset, so it is encrypted only if")


def test_an_instance_launched_from_a_template_is_judged_by_the_template():
    from_template = {"launchTemplate": {"id": "lt-1", "version": "$Latest"}}
    for name in ("instance-imdsv2", "instance-ebs-encrypted"):
        assert not findings(BY_NAME[name], [resource(INSTANCE, "node", from_template)]), name
    weak = {**from_template, "metadataOptions": {"httpTokens": "optional"},
            "rootBlockDevice": {"encrypted": False}, "ebsBlockDevices": [{"deviceName": "/dev/sdf"}]}
    assert [f.message for f in findings(BY_NAME["instance-ebs-encrypted"], [resource(INSTANCE, "node", weak)])] == [
        "the root volume is not encrypted; set rootBlockDevice.encrypted true",
        "volume /dev/sdf is not encrypted; set ebsBlockDevices[].encrypted true"]
    assert findings(BY_NAME["instance-imdsv2"], [resource(INSTANCE, "node", weak)])


def test_an_autoscaling_launch_configuration_is_judged_like_an_instance():
    config = resource("aws:ec2/launchConfiguration:LaunchConfiguration", "nodes", {
        "imageId": "ami-0abc", "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}})
    (hop,) = findings(BY_NAME["instance-imdsv2"], [config])
    assert hop.message.startswith("httpPutResponseHopLimit is 2")
    (root,) = findings(BY_NAME["instance-ebs-encrypted"], [config])
    assert root.message.startswith("rootBlockDevice is unset")


def test_the_cni_policy_on_a_node_role_is_found_in_its_managed_policy_list_too(prod):
    resources = copy.deepcopy(prod.resources)
    role = pick(resources, "aws:iam/role:Role", "eks-node")
    role.inputs["managedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
    (found,) = findings(BY_NAME["iam-cni-policy-not-on-node-role"], resources)
    assert found.level == "advisory" and found.urn == role.urn


def test_a_property_left_out_is_judged_by_the_default_that_then_applies(dev, prod):
    """Absent passes where the default is safe, fails where it is weak (docs/policies.md, 'when unset')."""
    # Karpenter fills an EC2NodeClass's metadataOptions with required / hop limit 1, and maps an encrypted
    # root volume itself unless the AMI family is Custom.
    resources = copy.deepcopy(prod.resources)
    nodeclass(resources).pop("metadataOptions")
    assert not findings(BY_NAME["karpenter-nodeclass-imdsv2"], resources)
    nodeclass(resources).pop("blockDeviceMappings")
    assert not findings(BY_NAME["karpenter-nodeclass-ebs-encrypted"], resources)
    nodeclass(resources)["amiFamily"] = "Custom"
    (custom,) = findings(BY_NAME["karpenter-nodeclass-ebs-encrypted"], resources)
    assert custom.message.startswith("no block device mapping for the root volume")
    # New queues get SSE-SQS unless it is turned off.
    queue = resource("aws:sqs/queue:Queue", "q", {"name": "q"})
    assert not findings(BY_NAME["sqs-encrypted"], [queue])
    # A GPU limit alone sets the request; a request alone is rejected by the API server.
    limit_only, request_only = workload(dev, prod), workload(dev, prod)
    container(limit_only)["resources"]["requests"].pop("nvidia.com/gpu")
    assert not findings(BY_NAME["k8s-gpu-request-equals-limit"], limit_only)
    container(request_only)["resources"]["limits"].pop("nvidia.com/gpu")
    assert findings(BY_NAME["k8s-gpu-request-equals-limit"], request_only)


@pytest.mark.parametrize(("toleration", "tolerated"), [
    ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # an empty key with Exists tolerates every taint
    ({"key": "nvidia.com/gpu", "value": "present"}, True),  # operator defaults to Equal
    ({"key": "nvidia.com/gpu", "effect": "NoSchedule"}, False),  # Equal with value "" does not match "present"
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
])
def test_gpu_tolerations_match_as_the_scheduler_matches_them(dev, prod, toleration, tolerated):
    resources = workload(dev, prod)
    pod(resources)["tolerations"] = [toleration]
    assert bool(findings(BY_NAME["k8s-gpu-requests-tolerate-gpu-taint"], resources)) is not tolerated


def test_a_role_without_a_namespace_is_still_namespaced():
    rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    role = resource(ROLE, "reader", {"metadata": {"name": "reader"}, "rules": [rule]})
    assert not findings(BY_NAME["k8s-rbac-secrets-narrow"], [role])
    cluster_role = resource("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "reader",
                            {"metadata": {"name": "reader"}, "rules": [rule]})
    (found,) = findings(BY_NAME["k8s-rbac-secrets-narrow"], [cluster_role])
    assert found.message.startswith("cluster role reader reads Secrets in every namespace")


def test_pools_that_name_no_instance_type_get_what_eks_and_karpenter_then_launch(prod):
    group = resource("aws:eks/nodeGroup:NodeGroup", "default", {
        "scalingConfig": {"minSize": 1, "desiredSize": 2, "maxSize": 3}})
    (family,) = findings(BY_NAME["cost-allowed-instance-families"], [group])
    assert family.message.startswith("t3.medium not in this stack's allowed families"), "EKS's default type"
    resources = copy.deepcopy(prod.resources)
    spec = nodepool(resources)
    spec["template"]["spec"]["requirements"] = [r for r in spec["template"]["spec"]["requirements"]
                                                if r["key"] != "node.kubernetes.io/instance-type"]
    spec["limits"].pop("nvidia.com/gpu")
    for name in ("cost-allowed-instance-families", "cost-allowed-gpu-models", "cost-max-gpus"):
        (found,) = findings(BY_NAME[name], resources, {"maxGpus": 1000})
        assert "may launch any instance type" in found.message, name
    # A family requirement is as good as a list of types.
    spec["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["p5"]})
    (h100,) = findings(BY_NAME["cost-allowed-gpu-models"], resources)
    assert h100.message.startswith("p5.48xlarge carries a GPU model this stack does not allow")


def test_the_cni_rule_reads_only_the_roles_that_hold_the_policy_so_a_first_preview_can_run_it():
    """At a first preview a role's trust built from an ARN is unknown; reading it would stop the whole check."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    ec2 = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                     "Action": "sts:AssumeRole"}]})
    node = resource("aws:iam/role:Role", "node", {"assumeRolePolicy": ec2})
    irsa = resource("aws:iam/role:Role", "velero", {"assumeRolePolicy": UNKNOWN_STRING_VALUE})
    cni = resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "node-cni", {
        "role": UNKNOWN_STRING_VALUE, "policyArn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"}, role=[node])
    (found,) = findings(BY_NAME["iam-cni-policy-not-on-node-role"], [node, irsa, cni])
    assert found.level == "advisory" and found.urn == cni.urn
