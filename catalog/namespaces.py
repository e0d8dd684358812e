"""Namespace names more than one layer needs: Kubernetes' own, and those platform components create.

Config reserves them (no team namespace may take one), components create them, and the
policy pack exempts them where a rule is for team namespaces only.
"""

from __future__ import annotations

KUBERNETES = ("kube-system", "kube-public", "kube-node-lease", "default")
GPU = "gpu"
MONITORING = "monitoring"
VELERO = "velero"
EXTERNAL_SECRETS = "external-secrets"
KEDA = "keda"
PLATFORM = (GPU, MONITORING, VELERO, EXTERNAL_SECRETS, KEDA)
