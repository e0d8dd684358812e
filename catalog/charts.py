"""Every third-party Helm chart the platform installs, pinned, with where the pin was read.

The values each release sets are checked in tests against the chart's own
values.yaml, vendored under tests/charts/<name>-<version>/ (Helm silently
ignores a key the chart does not have). components/helm.py installs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repository: str  # an https Helm repository, or an oci:// registry path
    source: str  # where the version was read upstream

    @property
    def oci(self) -> bool:
        return self.repository.startswith("oci://")


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
EXTERNAL_SECRETS = Chart("external-secrets", "2.9.0", "https://charts.external-secrets.io",
                         "external-secrets/external-secrets tag helm-chart-2.9.0 (cc5bfbc2, 2026-08-08), "
                         "deploy/charts/external-secrets (app v2.9.0)")
VELERO = Chart("velero", "12.1.0", "https://vmware-tanzu.github.io/helm-charts",
                "vmware-tanzu/helm-charts tag velero-12.1.0 (73466ca9, 2026-06-25), charts/velero (app 1.18.1)")
VELERO_APP_VERSION = "1.18.1"  # the chart's appVersion and image tag; its CRDs are vendored under tests/schemas/
# The AWS object-store plugin, an init container of the Velero pod: v1.14.x pairs with Velero 1.18.x
# (velero-io/velero-plugin-for-aws v1.14.2 README compatibility table; tag 5463822, 2026-06-16).
VELERO_AWS_PLUGIN_IMAGE = "docker.io/velero/velero-plugin-for-aws:v1.14.2"
PROMETHEUS_OPERATOR_CRDS = Chart(
    "prometheus-operator-crds", "31.0.1", "https://prometheus-community.github.io/helm-charts",
    "prometheus-community/helm-charts tag prometheus-operator-crds-31.0.1, the chart with appVersion v0.93.1 "
    "(CRDs in templates/: Helm upgrades them, unlike a chart's crds/ directory)")
KUBE_PROMETHEUS_STACK = Chart(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts",
    "prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3 (ea930bae, 2026-08-21), app v0.93.1; "
    "subcharts grafana 12.11.1, kube-state-metrics 8.4.0, prometheus-node-exporter 4.56.1")
FLUENT_BIT = Chart("fluent-bit", "0.58.1", "https://fluent.github.io/helm-charts",
                   "fluent/helm-charts tag fluent-bit-0.58.1 (22a564dc, 2026-08-17), app 5.1.1 (EKS Pod Identity "
                   "in its AWS credential chain since v4.0.0: src/aws/flb_aws_credentials_http.c)")
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts",
             "kedacore/charts tag v2.20.2 (cbb9bb8c, 2026-07-31), keda/ (app 2.20.2; kedacore/keda v2.20.2 68a5b502)")
PUSHGATEWAY = Chart("prometheus-pushgateway", "3.8.0", "https://prometheus-community.github.io/helm-charts",
                    "prometheus-community/helm-charts tag prometheus-pushgateway-3.8.0 (4fa56e1c, 2026-08-07), "
                    "app v1.11.3")
