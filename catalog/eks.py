"""EKS versions this project knows, with the addon versions pinned for each.

Addon versions move in lock-step with the Kubernetes version: a version
absent here is rejected by config validation rather than installed with
guessed addons. The cluster component installs these pins; the policy pack
judges support dates from them. Before bumping, confirm each pin with
`aws eks describe-addon-versions --kubernetes-version <v> --addon-name <addon>`.

Sources (read 2026-11-23):
- support dates: endoflife-date/endoflife.date products/amazon-eks.md @ a70eca3
  (scraped from docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)
- kube-proxy, coredns: AWS EKS user guide, managing-kube-proxy / managing-coredns tables
- vpc-cni: AWS EKS user guide, managing-vpc-cni table (1.34, 1.35); 1.36 from a public
  pin of describe-addon-versions (no AWS table row yet)
- aws-ebs-csi-driver, eks-pod-identity-agent, snapshot-controller: AWS publishes no per-version table;
  describe-addon-versions defaults recorded in public repositories (2026-06 to 2026-11; snapshot-controller
  v8.6.0-eksbuild.4 pinned with Kubernetes 1.35; the addon is external-snapshotter v8.6.0, whose
  VolumeSnapshotClass CRD is vendored under tests/schemas/)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

# Control-plane log types EKS can send to CloudWatch; the cluster enables all, a policy requires all.
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


@dataclass(frozen=True)
class EksRelease:
    version: str
    end_of_standard_support: date
    end_of_extended_support: date
    addons: Mapping[str, str]


def _release(version: str, standard: date, extended: date, **addons: str) -> EksRelease:
    return EksRelease(version, standard, extended,
                      MappingProxyType({name.replace("_", "-"): v for name, v in addons.items()}))


RELEASES: Mapping[str, EksRelease] = MappingProxyType({r.version: r for r in (
    _release("1.34", date(2026, 12, 2), date(2027, 12, 2),
             vpc_cni="v1.21.1-eksbuild.7", coredns="v1.13.2-eksbuild.11", kube_proxy="v1.34.6-eksbuild.13",
             aws_ebs_csi_driver="v1.62.0-eksbuild.1", eks_pod_identity_agent="v1.3.10-eksbuild.3",
             snapshot_controller="v8.6.0-eksbuild.4"),
    _release("1.35", date(2027, 3, 27), date(2028, 3, 27),
             vpc_cni="v1.21.1-eksbuild.7", coredns="v1.14.3-eksbuild.3", kube_proxy="v1.35.3-eksbuild.13",
             aws_ebs_csi_driver="v1.66.0-eksbuild.1", eks_pod_identity_agent="v1.3.10-eksbuild.3",
             snapshot_controller="v8.6.0-eksbuild.4"),
    _release("1.36", date(2027, 8, 2), date(2028, 8, 2),
             vpc_cni="v1.22.3-eksbuild.1", coredns="v1.14.3-eksbuild.3", kube_proxy="v1.36.0-eksbuild.14",
             aws_ebs_csi_driver="v1.63.1-eksbuild.1", eks_pod_identity_agent="v1.3.10-eksbuild.3",
             snapshot_controller="v8.6.0-eksbuild.4"),
)})
