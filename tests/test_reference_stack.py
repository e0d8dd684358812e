"""The pack on a stack it was not written for: a plain EKS program (tests/reference/plain_eks).

It is recorded with the same mock engine as this platform's stacks and
checked through the same runner with the pack's default config (what
`pulumi preview --policy-pack policies` applies with no --policy-pack-config).
Each weakness the program has on purpose must be named, on the resource
that has it; the resources it gets right must draw nothing but the
organisation rules, which are this platform's choices (advisory by default).
"""

from __future__ import annotations

import pytest

from policies import runner

# Configuration, not findings of fact (docs/policies.md, "Using the pack on another stack").
ORGANISATION = {"aws-required-tags", "cost-allowed-instance-families", "cost-allowed-gpu-models", "cost-max-pool-size",
                "cost-max-gpus", "cost-ebs-volume-cap", "cost-node-tags", "cost-monthly-budget"}

SUBNET, SG, VPC = "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpc:Vpc"
CLUSTER, NODE_GROUP = "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup"
ROLE, ATTACHMENT = "aws:iam/role:Role", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
DEPLOYMENT, SERVICE = "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"

# (rule, (type, name) of the resource it must name, what the message must say): every weakness the program has.
WEAKNESSES = [
    ("subnet-no-auto-public-ip", (SUBNET, "public-0"), "mapPublicIpOnLaunch is true"),
    ("subnet-no-auto-public-ip", (SUBNET, "public-1"), "mapPublicIpOnLaunch is true"),
    ("vpc-flow-logs", (VPC, "main"), "VPC main has no flow log"),
    ("security-group-no-open-ingress", (SG, "cluster"), "ingress from 0.0.0.0/0 on every protocol and port"),
    ("security-group-no-open-ingress", (SG, "bastion"), "ingress from 0.0.0.0/0 on ports 22-22"),
    ("instance-imdsv2", ("aws:ec2/instance:Instance", "bastion"), "metadataOptions is unset, so the AMI decides"),
    ("instance-ebs-encrypted", ("aws:ec2/instance:Instance", "bastion"), "rootBlockDevice is unset"),
    ("eks-endpoint-access", (CLUSTER, "demo"), "the public API endpoint is open to the internet"),
    ("eks-endpoint-access", (CLUSTER, "demo"), "the private endpoint is off"),
    ("eks-secrets-encryption", (CLUSTER, "demo"), "not envelope-encrypted with a KMS key"),
    ("eks-control-plane-logging", (CLUSTER, "demo"), "control-plane logs missing: api, audit, authenticator"),
    ("eks-supported-version", (CLUSTER, "demo"), "version is unset, so EKS creates the cluster on its default version"),
    ("eks-access-entries", (CLUSTER, "demo"), "authenticationMode is unset, so EKS uses CONFIG_MAP"),
    ("eks-no-implicit-creator-admin", (CLUSTER, "demo"), "bootstrapClusterCreatorAdminPermissions is on"),
    ("cost-eks-standard-support-only", (CLUSTER, "demo"), "upgradePolicy.supportType is not STANDARD"),
    ("eks-no-aws-auth-configmap", ("kubernetes:core/v1:ConfigMapPatch", "aws-auth"), "the aws-auth ConfigMap is deprecated"),
    ("node-group-launch-template", (NODE_GROUP, "default"), "no launch template, so EKS launches the nodes from its default"),
    ("iam-cni-policy-not-on-node-role", (ATTACHMENT, "node-AmazonEKS_CNI_Policy"), "the node role carries AmazonEKS_CNI_Policy"),
    ("k8s-resources-set", (DEPLOYMENT, "web"), "container web sets no requests for cpu, memory"),
    ("k8s-resources-set", (DEPLOYMENT, "web"), "container web sets no limits for memory"),
    ("k8s-deployment-probes", (DEPLOYMENT, "web"), "container web has no readinessProbe"),
    ("k8s-deployment-probes", (DEPLOYMENT, "web"), "container web has no livenessProbe"),
    ("k8s-run-as-non-root", (DEPLOYMENT, "web"), "container web may run as root"),
    ("k8s-no-privilege-escalation", (DEPLOYMENT, "web"), "does not set allowPrivilegeEscalation: false"),
    ("k8s-drop-all-capabilities", (DEPLOYMENT, "web"), "container web does not drop ALL capabilities"),
    ("k8s-image-pinned", (DEPLOYMENT, "web"), "image 'nginx' is not pinned"),
    ("k8s-no-default-service-account-token", (DEPLOYMENT, "web"), "the default service account with its token mounted"),
    ("k8s-no-default-namespace", (DEPLOYMENT, "web"), "web runs in the default namespace"),
    ("k8s-pdb-for-replicated-deployments", (DEPLOYMENT, "web"), "runs several replicas with no PodDisruptionBudget"),
    ("k8s-internal-load-balancers", (SERVICE, "web"), "service web gets an internet-facing load balancer"),
]
# What the program gets right: these draw no finding outside the organisation rules.
FINE = [
    ("aws:ec2/internetGateway:InternetGateway", "main"), ("aws:ec2/routeTable:RouteTable", "public"),
    ("aws:ec2/routeTableAssociation:RouteTableAssociation", "public-0"),
    ("aws:ec2/routeTableAssociation:RouteTableAssociation", "public-1"),
    (ROLE, "cluster"), (ATTACHMENT, "cluster"), (ROLE, "node"), (ATTACHMENT, "node-AmazonEKSWorkerNodePolicy"),
    (ATTACHMENT, "node-AmazonEC2ContainerRegistryReadOnly"), ("pulumi:providers:kubernetes", "demo"),
]


@pytest.fixture(scope="module")
def found(plain_eks) -> list[tuple[str, tuple[str, str], runner.Finding]]:  # plain_eks: conftest.py
    """Each finding with the (type, name) of the resource it names (stack rules name it by URN)."""
    by_urn = {r.urn: (r.type, r.name) for r in plain_eks.resources}
    return [(f.rule, by_urn.get(f.urn or "", ("stack", f.resource)), f) for f in runner.check(plain_eks, {})]


@pytest.mark.parametrize(("rule", "resource", "says"), WEAKNESSES, ids=[f"{r}:{n[1]}" for r, n, _ in WEAKNESSES])
def test_every_weakness_is_named_on_the_resource_that_has_it(found, rule, resource, says):
    messages = [f.message for r, named, f in found if r == rule and named == resource]
    assert any(says in m for m in messages), messages or sorted({(r, named) for r, named, _ in found})


def test_no_rule_raises_and_none_fires_beyond_the_weaknesses_and_organisation_rules(found):
    assert [f.message for _, _, f in found if f.message.startswith("cannot check") or f.level == "cannot-verify"] == []
    listed = {(rule, resource) for rule, resource, _ in WEAKNESSES}
    assert sorted({(r, named) for r, named, _ in found if r not in ORGANISATION} - listed) == []


def test_what_the_program_gets_right_draws_only_organisation_findings(plain_eks, found):
    assert set(FINE) <= {(r.type, r.name) for r in plain_eks.resources}
    assert [(r, named) for r, named, _ in found if named in FINE and r not in ORGANISATION] == []
    assert {r for r, named, _ in found if named in FINE} == {"aws-required-tags"}, "untagged, as tutorials leave them"


def test_organisation_rules_only_advise_without_a_pack_config(found):
    assert {f.level for r, _, f in found if r in ORGANISATION} == {"advisory"}
