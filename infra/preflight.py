"""Preflight before `pulumi up` (CI, with credentials): do the pins exist in the region, do the GPU quotas fit?

- Every pinned EKS addon version exists for the stack's Kubernetes version (describe-addon-versions).
- The Karpenter AMI alias resolves: the SSM parameter Karpenter itself reads (karpenter-provider-aws
  v1.14.1 pkg/providers/amifamily/al2023.go resolvePath), standard and nvidia variants.
- Advisory: the account's EC2 vCPU quotas for P and G instances (on-demand and spot apart) cover the
  GPU pools' CPU limits, with the command to raise one.
Exit 1 when a pin is missing; quota shortfalls only warn.
"""

from __future__ import annotations

import sys

import boto3

from catalog.eks import RELEASES
from catalog.instances import INSTANCES
from infra.config import parse
from infra.config.stack_file import read_stack_config

# EC2 vCPU quotas (Service Quotas, service code ec2).
QUOTAS = {("P", "on-demand"): "L-417A185B", ("G", "on-demand"): "L-DB2E81BA",
          ("P", "spot"): "L-7212CCBC", ("G", "spot"): "L-3819A6DF"}


def ami_parameters(kubernetes: str, alias: str) -> list[str]:
    version = alias.split("@", 1)[1]
    return [f"/aws/service/eks/optimized-ami/{kubernetes}/amazon-linux-2023/x86_64/{variant}/"
            f"amazon-eks-node-al2023-x86_64-{variant}-{kubernetes}-{version}/image_id" for variant in ("standard", "nvidia")]


def gpu_vcpus(cfg) -> dict[tuple[str, str], int]:
    """(instance class, capacity type) -> the vCPUs the GPU pools may run at their limits."""
    need: dict[tuple[str, str], int] = {}
    for pool in cfg.workload_pools.values():
        if not pool.gpu:
            continue
        family = "P" if all(t.startswith("p") for t in pool.types) else "G"
        vcpus = pool.effective_limits.cpu or pool.max_size * max(INSTANCES[t].vcpu for t in pool.types)
        for capacity in pool.capacity_types:
            need[(family, capacity)] = need.get((family, capacity), 0) + vcpus
    return need


def main(stack: str, session=None) -> int:
    cfg = parse(read_stack_config(stack), stack=stack)
    session = session or boto3.Session(region_name=cfg.region)
    release, problems = RELEASES[cfg.cluster.version], []
    eks, ssm, quotas = session.client("eks"), session.client("ssm"), session.client("service-quotas")
    for addon, version in release.addons.items():
        offered = {v["addonVersion"] for a in eks.describe_addon_versions(
            addonName=addon, kubernetesVersion=release.version)["addons"] for v in a["addonVersions"]}
        if version not in offered:
            problems.append(f"addon {addon} {version} is not offered for Kubernetes {release.version} in {cfg.region}")
    if cfg.karpenter is not None:
        for name in ami_parameters(release.version, cfg.karpenter.ami_alias):
            try:
                ssm.get_parameter(Name=name)
            except ssm.exceptions.ParameterNotFound:
                problems.append(f"Karpenter AMI alias {cfg.karpenter.ami_alias}: {name} does not exist")
    for (family, capacity), vcpus in sorted(gpu_vcpus(cfg).items()):
        code = QUOTAS[(family, capacity)]
        value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        if value < vcpus:
            print(f"warning: {family} {capacity} quota {code} is {value:.0f} vCPUs; the GPU pools may use {vcpus}. "
                  f"Raise it: aws service-quotas request-service-quota-increase --service-code ec2 "
                  f"--quota-code {code} --desired-value {vcpus} --region {cfg.region}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"preflight {stack}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
