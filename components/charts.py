"""Every third-party Helm chart the platform installs, pinned, with where the pin was read.

The values each release sets are checked in tests against the chart's own
values.yaml, vendored under tests/charts/<name>-<version>/ (Helm silently
ignores a key the chart does not have).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repository: str  # an https Helm repository, or an oci:// registry path
    source: str  # where the version was read upstream

    def release(self, resource_name: str, namespace: pulumi.Input[str], values: Mapping[str, Any],
                opts: pulumi.ResourceOptions, skip_crds: bool = False) -> k8s.helm.v3.Release:
        oci = self.repository.startswith("oci://")
        return k8s.helm.v3.Release(
            resource_name,
            name=self.name,
            chart=f"{self.repository}/{self.name}" if oci else self.name,
            version=self.version,
            repository_opts=None if oci else {"repo": self.repository},
            namespace=namespace,
            values=dict(values),
            skip_crds=skip_crds,
            # A failed upgrade leaves no half-installed objects behind.
            cleanup_on_fail=True,
            max_history=10,
            opts=opts,
        )


KARPENTER_CRD = Chart("karpenter-crd", "1.14.1", "oci://public.ecr.aws/karpenter",
                      "aws/karpenter-provider-aws tag v1.14.1 (2026-08-20), charts/karpenter-crd")
KARPENTER = Chart("karpenter", "1.14.1", "oci://public.ecr.aws/karpenter",
                  "aws/karpenter-provider-aws tag v1.14.1 (2026-08-20), charts/karpenter")
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.20.0", "https://nvidia.github.io/k8s-device-plugin",
                             "NVIDIA/k8s-device-plugin tag v0.20.0 (2026-08-19), deployments/helm/nvidia-device-plugin")
DCGM_EXPORTER = Chart("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts",
                      "NVIDIA/dcgm-exporter tag 4.5.3-4.8.2 (2026-05-06), deployment/")
EFA_DEVICE_PLUGIN = Chart("aws-efa-k8s-device-plugin", "v0.5.30", "https://aws.github.io/eks-charts",
                          "aws/eks-charts master bfe91c4b (2026-07-21), stable/aws-efa-k8s-device-plugin")
