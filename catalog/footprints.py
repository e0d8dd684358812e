"""What the platform's own pods request, said once: charts' values use these, fit checks sum them.

EKS addons (we do not set their resources) with the chart defaults they are built from:
- aws-node (vpc-cni): 25m aws-node + 25m network policy agent, no memory request
  (aws/amazon-vpc-cni-k8s v1.21.1 charts/aws-vpc-cni/values.yaml:189-191, nodeAgent.resources falls back).
- kube-proxy: 100m, no memory request (EKS's kube-proxy manifest, as eksctl-io/eksctl v0.230.0 vendors it:
  pkg/addons/default/testdata/sample-1.15-eksbuild.1.json:76-79; aws/containers-roadmap#1509).
- coredns: 2 x 100m / 70Mi (eksctl v0.230.0 pkg/addons/default/assets/coredns-1.35.json:219-223).
- aws-ebs-csi-driver: controller 2 x (5 x 10m/40Mi + liveness 10m/32Mi); node 10m/40Mi + 2 x 10m/32Mi
  (kubernetes-sigs/aws-ebs-csi-driver helm-chart-aws-ebs-csi-driver-2.64.0 values.yaml:290-307, 415-420,
  templates/controller.yaml:646-656, _node.tpl:238-280).
- eks-pod-identity-agent, snapshot-controller: no requests set (aws/eks-pod-identity-agent v0.1.37
  values.yaml:165; kubernetes-csi/external-snapshotter v8.6.0 setup-snapshot-controller.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pod:
    """Requests of one pod (all its containers), and the memory limit our charts set."""

    cpu_millicores: int
    memory_mib: int
    memory_limit_mib: int | None = None
    cpu_limit_millicores: int | None = None  # mostly unset: throttling a controller hurts more than sharing

    def resources(self) -> dict:
        """The Kubernetes `resources` block of a one-container pod."""
        block: dict = {"requests": {"cpu": f"{self.cpu_millicores}m", "memory": f"{self.memory_mib}Mi"}}
        limits = {"cpu": f"{self.cpu_limit_millicores}m" if self.cpu_limit_millicores else None,
                  "memory": f"{self.memory_limit_mib}Mi" if self.memory_limit_mib else None}
        if any(limits.values()):
            block["limits"] = {k: v for k, v in limits.items() if v}
        return block


@dataclass(frozen=True)
class Placed:
    name: str
    pod: Pod
    replicas: int  # pods on the pool; for a DaemonSet, pods per node
    daemonset: bool = False


# On every node (EKS addons).
AWS_NODE = Pod(50, 0)
KUBE_PROXY = Pod(100, 0)
EBS_CSI_NODE = Pod(30, 104)
POD_IDENTITY_AGENT = Pod(0, 0)
EVERY_NODE = (Placed("aws-node", AWS_NODE, 1, True), Placed("kube-proxy", KUBE_PROXY, 1, True),
              Placed("ebs-csi-node", EBS_CSI_NODE, 1, True),
              Placed("eks-pod-identity-agent", POD_IDENTITY_AGENT, 1, True))
# On the system pool (EKS addons).
COREDNS = Placed("coredns", Pod(100, 70), 2)
EBS_CSI_CONTROLLER = Placed("ebs-csi-controller", Pod(60, 232), 2)
SNAPSHOT_CONTROLLER = Placed("snapshot-controller", Pod(0, 0), 2)

# Ours (chart values take their resources from here).
# Karpenter's docs size its controller with requests equal to limits (Guaranteed QoS).
KARPENTER_CONTROLLER = Pod(1000, 1024, 1024, 1000)
ESO_CONTROLLER = Pod(100, 128, 512)
ESO_WEBHOOK = Pod(50, 64, 256)
ESO_CERT_CONTROLLER = Pod(50, 64, 256)
# Velero's own install defaults request 500m/128Mi (vmware-tanzu/velero v1.18.1 pkg/install/resources.go:44-47);
# the server mostly waits on S3, while Kopia needs memory for its index.
VELERO_SERVER = Pod(250, 256, 1024)
VELERO_PLUGIN_INIT = Pod(10, 32, 64)  # copies the plugin binary, then exits
VELERO_NODE_AGENT = Pod(100, 256, 1024)

# The monitoring stack (kube-prometheus-stack 88.5.3 sets no requests: these are ours).
PROMETHEUS = Pod(500, 2048, 6144)
ALERTMANAGER = Pod(50, 128, 256)
PROMETHEUS_OPERATOR = Pod(100, 128, 512)
GRAFANA = Pod(100, 256, 512)
GRAFANA_SIDECAR = Pod(20, 64, 128)  # the dashboard loader beside Grafana
KUBE_STATE_METRICS = Pod(50, 128, 512)
NODE_EXPORTER = Pod(20, 32, 64)
CONFIG_RELOADER = Pod(10, 32, 64)  # the operator's sidecar in Prometheus and Alertmanager pods
FLUENT_BIT = Pod(50, 128, 512)

# KEDA 2.20.2 (its chart defaults to 100m/100Mi each; the webhook and metrics server are light).
KEDA_OPERATOR = Pod(100, 128, 1000)
KEDA_METRICS_SERVER = Pod(100, 128, 1000)
KEDA_WEBHOOKS = Pod(50, 64, 512)
PUSHGATEWAY = Pod(20, 32, 128)  # evaluation scores wait here for Prometheus


def together(*pods: Pod) -> Pod:
    """One pod's requests from its containers (a server and its sidecar)."""
    return Pod(sum(p.cpu_millicores for p in pods), sum(p.memory_mib for p in pods))


def every_node(move_volume_data: bool) -> list[Placed]:
    """The DaemonSets the stack runs on every node: the EKS addons', node-exporter, Fluent Bit, and the Velero
    node agent when volume data is moved. (The GPU plugins and DCGM request nothing.)"""
    return [*EVERY_NODE, Placed("node-exporter", NODE_EXPORTER, 1, daemonset=True),
            Placed("fluent-bit", FLUENT_BIT, 1, daemonset=True),
            *([Placed("velero-node-agent", VELERO_NODE_AGENT, 1, daemonset=True)] if move_volume_data else [])]
