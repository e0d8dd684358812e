"""Kubernetes rules: workload security, scheduling on GPU nodes, namespaces, services, Helm releases.

Workload rules apply to the typed workloads the program writes (Deployment,
StatefulSet, DaemonSet, Job, CronJob, Pod). A Helm release is one opaque
resource: its pods are the chart's, so only the release itself is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from catalog import namespaces
from catalog.scheduling import GPU_TAINT, Taint
from policies.support import ADVISORY, cis, eks_bp, exempt_namespaces, of_type, resource_rule, stack_rule

WORKLOADS = ["kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
             "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:Pod"]
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|API_?KEY|CREDENTIAL)", re.IGNORECASE)
PINNED_IMAGE = re.compile(r"^[^@]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of any workload kind: Pod, a template owner, or a CronJob's job template."""
    spec = props.get("spec") or {}
    if "jobTemplate" in spec:
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if "template" in spec:
        spec = (spec.get("template") or {}).get("spec") or {}
    return spec


def containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []


def workload_rule(name: str, description: str, check, **kwargs):
    """A rule over every container (or the pod spec) of every typed workload."""

    def validate(props: Mapping[str, Any], config: dict) -> Iterator[str]:
        yield from check(pod_spec(props), config)

    return resource_rule(name, description, WORKLOADS, validate, **kwargs)


def _no_privileged(pod, _):
    for c in containers(pod):
        if (c.get("securityContext") or {}).get("privileged") is True:
            yield f"container {c.get('name')} is privileged: it has full access to the node"


def _no_escalation(pod, _):
    for c in containers(pod):
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            yield f"container {c.get('name')} does not set allowPrivilegeEscalation: false"


def _non_root(pod, _):
    pod_level = (pod.get("securityContext") or {}).get("runAsNonRoot") is True
    for c in containers(pod):
        if not (pod_level or (c.get("securityContext") or {}).get("runAsNonRoot") is True):
            yield f"container {c.get('name')} may run as root; set runAsNonRoot: true"


def _drop_all(pod, _):
    for c in containers(pod):
        dropped = ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []
        if "ALL" not in dropped:
            yield f"container {c.get('name')} does not drop ALL capabilities"


def _host_namespaces(pod, _):
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field) is True:
            yield f"the pod shares the node's {field.removeprefix('host')} namespace ({field}: true)"


def _host_path(pod, _):
    for volume in pod.get("volumes") or []:
        if volume.get("hostPath"):
            yield f"volume {volume.get('name')} mounts the host path {volume['hostPath'].get('path')}"


def _resources(pod, _):
    for c in containers(pod):
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in (resources.get(kind) or {})]
            if kind == "limits":
                missing = [r for r in missing if r == "memory"]  # CPU limits throttle; memory limits are a must
            if missing:
                yield f"container {c.get('name')} sets no {kind} for {', '.join(missing)}"


def _pinned(pod, _):
    for c in containers(pod):
        image = str(c.get("image") or "")
        tag = image.rsplit("/", 1)[-1]
        if ":" not in tag and "@" not in image or tag.endswith(":latest") or not PINNED_IMAGE.match(image):
            yield f"container {c.get('name')} image {image!r} is not pinned to a version tag or digest"


def _probes(pod, config):
    for c in pod.get("containers") or []:
        for probe in ("readinessProbe", "livenessProbe"):
            if not c.get(probe):
                yield f"container {c.get('name')} has no {probe}"


def _tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """The scheduler's match (core/v1 Toleration): operator defaults to Equal, an empty key with Exists
    matches every taint, an empty effect matches every effect."""
    if toleration.get("effect") not in (None, "", taint.effect):
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return toleration.get("key") in (None, "", taint.key)
    return toleration.get("key") == taint.key and (toleration.get("value") or "") == taint.value


def _gpu_toleration(pod, _):
    wants_gpu = any(GPU_TAINT.key in ((c.get("resources") or {}).get(kind) or {})
                    for c in containers(pod) for kind in ("requests", "limits"))
    tolerated = any(_tolerates(t, GPU_TAINT) for t in pod.get("tolerations") or [])
    if wants_gpu and not tolerated:
        yield f"the pod requests {GPU_TAINT.key} but does not tolerate the GPU taint; it will never schedule"


def _secret_env(pod, _):
    for c in containers(pod):
        for env in c.get("env") or []:
            if SECRET_NAME.search(str(env.get("name"))) and env.get("value"):
                yield (f"container {c.get('name')} sets {env.get('name')} as a literal; "
                       "read it from a Secret written by an ExternalSecret")


no_privileged = workload_rule(
    "k8s-no-privileged", "No privileged containers.", _no_privileged, severity=Severity.CRITICAL,
    framework=cis("4.2.1", "Minimize the admission of privileged containers"),
    remediation="Remove securityContext.privileged; grant only the capabilities needed.",
    unset="privileged unset: false (Kubernetes API reference, SecurityContext): passes.")
no_privilege_escalation = workload_rule(
    "k8s-no-privilege-escalation", "Containers cannot gain privileges.", _no_escalation, severity=Severity.HIGH,
    framework=cis("4.2.5", "Minimize the admission of containers with allowPrivilegeEscalation"),
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    unset=("allowPrivilegeEscalation unset: true for a process that does not set no_new_privs itself (Kubernetes "
           "API reference, SecurityContext): fails."))
run_as_non_root = workload_rule(
    "k8s-run-as-non-root", "Containers run as a non-root user.", _non_root, severity=Severity.HIGH,
    framework=eks_bp("security#run-the-application-as-a-non-root-user"),
    remediation="Set securityContext.runAsNonRoot: true (and a runAsUser) on the pod or each container.",
    unset=("runAsNonRoot unset: no check, the image's user applies, root for most images (Kubernetes API "
           "reference, SecurityContext): fails."))
drop_all_capabilities = workload_rule(
    "k8s-drop-all-capabilities", "Containers drop ALL Linux capabilities.", _drop_all, severity=Severity.MEDIUM,
    framework=eks_bp("security#pod-security"),
    remediation="Set securityContext.capabilities.drop: [ALL] and add back only what is needed.",
    unset=("capabilities unset: the container runtime's default set, NET_RAW included (Kubernetes docs, "
           "configure a security context): fails."))
no_host_namespaces = workload_rule(
    "k8s-no-host-namespaces", "Pods do not share the node's network, PID or IPC namespace.", _host_namespaces,
    severity=Severity.HIGH, framework=cis("4.2.4", "Minimize the admission of containers wishing to share the "
                                                   "host network namespace"),
    remediation="Remove hostNetwork, hostPID and hostIPC.",
    unset="hostNetwork, hostPID and hostIPC unset: false (Kubernetes API reference, PodSpec): passes.")
no_host_path = workload_rule(
    "k8s-no-host-path", "Pods do not mount host paths.", _host_path, severity=Severity.HIGH,
    framework=eks_bp("security#pod-security"),
    remediation="Use an emptyDir, a PersistentVolumeClaim or a ConfigMap instead of hostPath.",
    unset="n/a: judges the volumes that are there; a pod without volumes mounts nothing from the node.")
resources_set = workload_rule(
    "k8s-resources-set", "Containers request CPU and memory and limit memory.", _resources, severity=Severity.MEDIUM,
    framework=eks_bp("reliability#set-resource-requests-and-limits"),
    remediation="Set resources.requests.cpu/memory and resources.limits.memory on every container.",
    unset=("requests and limits unset: BestEffort QoS, evicted first, no memory ceiling (Kubernetes docs, pod "
           "QoS classes); a LimitRange default is not visible to the rule: fails."))
image_pinned = workload_rule(
    "k8s-image-pinned", "Images are pinned to a version tag or digest, never latest.", _pinned,
    severity=Severity.MEDIUM, framework=eks_bp("security#image-security"),
    remediation="Reference images as repo:1.2.3 or repo@sha256:<digest>.",
    unset="No tag: :latest, whatever was pushed last (Kubernetes docs, images): fails.")
gpu_toleration = workload_rule(
    "k8s-gpu-requests-tolerate-gpu-taint", "Pods that request GPUs tolerate the GPU taint.", _gpu_toleration,
    severity=Severity.MEDIUM, framework=eks_bp("aiml-compute"),
    remediation="Add the toleration nvidia.com/gpu=present:NoSchedule (catalog/scheduling.GPU_TAINT).",
    unset=("Toleration operator unset: Equal, and value unset is \"\", which does not match "
           "nvidia.com/gpu=present; effect unset matches every effect; Exists with no key tolerates every taint "
           "(Kubernetes API reference, Toleration)."))
no_literal_secrets_in_env = workload_rule(
    "k8s-no-literal-secret-env", "Secrets reach containers from Secrets, not literal env values.", _secret_env,
    severity=Severity.HIGH, framework=cis("4.4.1", "Prefer using secrets as files over secrets as environment "
                                                   "variables"),
    remediation="Use env[].valueFrom.secretKeyRef on a Secret synced by an ExternalSecret.",
    unset="n/a: judges the env values that are there.")

probes = resource_rule(
    "k8s-deployment-probes", "Deployments define readiness and liveness probes.", "kubernetes:apps/v1:Deployment",
    lambda p, c: _probes(pod_spec(p), c), severity=Severity.MEDIUM,
    framework=eks_bp("reliability#configure-and-size-liveness-and-readiness-probes"),
    remediation="Add readinessProbe and livenessProbe to every container.",
    unset=("Probes unset: the pod is ready as soon as it starts and never restarted when hung (Kubernetes docs, "
           "liveness, readiness and startup probes): fails."))

no_secret_literals = resource_rule(
    "k8s-no-secret-manifests", "The program writes no Secret values; ExternalSecrets sync them.",
    "kubernetes:core/v1:Secret",
    lambda p, c: (["a Secret with data in the program puts its value in Pulumi state; sync it with an "
                   "ExternalSecret from Secrets Manager"] if p.get("data") or p.get("stringData") else []),
    severity=Severity.HIGH, framework=cis("4.4.1", "Prefer using secrets as files over secrets as environment "
                                                   "variables"),
    remediation="Store the value in AWS Secrets Manager and create an ExternalSecret for it.",
    unset="n/a: judges the Secrets the stack writes.")

PSS_LEVELS = ("restricted", "baseline", "privileged")


def _pod_security(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    metadata = props.get("metadata") or {}
    name, level = metadata.get("name"), (metadata.get("labels") or {}).get("pod-security.kubernetes.io/enforce")
    if not level:
        yield f"namespace {name} has no pod-security.kubernetes.io/enforce label"
        return
    waived = (config["waivers"] or {}).get(name, "restricted")
    if level not in PSS_LEVELS:
        yield f"namespace {name} enforces {level!r}, not a Pod Security level ({', '.join(PSS_LEVELS)})"
    elif waived not in PSS_LEVELS or PSS_LEVELS.index(level) > PSS_LEVELS.index(waived):
        yield (f"namespace {name} enforces {level} without a waiver (waivers: {name}: {level} in the pack config, "
               f"with the reason in docs/tenancy.md); everything else is restricted")


namespace_pod_security = resource_rule(
    "k8s-namespace-pod-security", "Namespaces enforce Pod Security: restricted unless waived.",
    "kubernetes:core/v1:Namespace", _pod_security, severity=Severity.MEDIUM,
    framework=cis("4.2.1", "Minimize the admission of privileged containers"),
    remediation="Label the namespace pod-security.kubernetes.io/enforce=restricted, or waive a documented need "
                "(waivers: {<namespace>: baseline|privileged}).",
    config={"waivers": {"type": "object", "default": {namespaces.GPU: "privileged", namespaces.VELERO: "baseline",
                                                   namespaces.MONITORING: "privileged"},
                        "description": "Namespace -> the most permissive level it may enforce (documented need)."}},
    unset="enforce label unset: privileged, nothing enforced (Kubernetes docs, Pod Security admission): fails.")


def _internal_lb(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    if (props.get("spec") or {}).get("type") != "LoadBalancer":
        return
    metadata = props.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    internal = (annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme") == "internal"
                or annotations.get("service.beta.kubernetes.io/aws-load-balancer-internal") in ("true", "0.0.0.0/0"))
    if not internal and metadata.get("name") not in config["allowPublic"]:
        yield f"service {metadata.get('name')} gets an internet-facing load balancer"


internal_load_balancers = resource_rule(
    "k8s-internal-load-balancers", "LoadBalancer Services are internal unless allowed.",
    "kubernetes:core/v1:Service", _internal_lb, severity=Severity.HIGH, framework=eks_bp("networking"),
    remediation="Annotate service.beta.kubernetes.io/aws-load-balancer-scheme: internal, or add the service to "
                "allowPublic.",
    config={"allowPublic": {"type": "array", "items": {"type": "string"}, "default": []}},
    unset=("Scheme annotation unset: the AWS cloud provider creates an internet-facing load balancer (Kubernetes "
           "docs, Service type LoadBalancer on AWS): fails."))

helm_chart_pinned = resource_rule(
    "helm-chart-pinned", "Helm releases pin an exact chart version.", "kubernetes:helm.sh/v3:Release",
    lambda p, c: ([] if re.match(r"^v?\d+\.\d+\.\d+$", str(p.get("version") or "")) else
                  [f"chart {p.get('chart')} version {p.get('version')!r} is not an exact version"]),
    severity=Severity.MEDIUM, framework=eks_bp("cluster-upgrades"),
    remediation="Set version to an exact chart version and vendor its values.yaml under tests/charts/.",
    unset="version unset: the newest chart at every run (Pulumi helm.v3.Release docs): fails.")


def _pdbs(resources, config) -> Iterator[tuple[str, str | None]]:
    if not config["required"]:
        return
    budgets = of_type(resources, "kubernetes:policy/v1:PodDisruptionBudget")
    for deployment in of_type(resources, "kubernetes:apps/v1:Deployment"):
        spec = deployment.props.get("spec") or {}
        if float(spec.get("replicas") or 1) < 2:
            continue
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        namespace = (deployment.props.get("metadata") or {}).get("namespace")
        covered = any((b.props.get("metadata") or {}).get("namespace") == namespace and all(
            labels.get(k) == v for k, v in (((b.props.get("spec") or {}).get("selector") or {})
                                            .get("matchLabels") or {}).items()) for b in budgets)
        if not covered:
            yield f"deployment {deployment.name} runs several replicas with no PodDisruptionBudget", deployment.urn


pdb_for_replicated = stack_rule(
    "k8s-pdb-for-replicated-deployments", "Multi-replica Deployments have a PodDisruptionBudget (where required).",
    _pdbs, severity=Severity.MEDIUM, framework=eks_bp("reliability#use-pod-disruption-budgets"),
    remediation="Add a PodDisruptionBudget whose selector matches the Deployment's pod labels.",
    config={"required": {"type": "boolean", "default": True}},
    unset=("replicas unset: 1 (Kubernetes API reference, DeploymentSpec), so no PodDisruptionBudget is needed: "
           "passes."))


def _default_deny(resources, config) -> Iterator[tuple[str, str | None]]:
    policies = of_type(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    for namespace in of_type(resources, "kubernetes:core/v1:Namespace"):
        name = (namespace.props.get("metadata") or {}).get("name")
        if name in config["exempt"]:
            continue
        denies = [p for p in policies if (p.props.get("metadata") or {}).get("namespace") == name
                  and not ((p.props.get("spec") or {}).get("podSelector") or {}).get("matchLabels")
                  and {"Ingress", "Egress"} <= set((p.props.get("spec") or {}).get("policyTypes") or [])
                  and not (p.props.get("spec") or {}).get("ingress") and not (p.props.get("spec") or {}).get("egress")]
        if not denies:
            yield f"namespace {name} has no default-deny NetworkPolicy (ingress and egress)", namespace.urn


namespace_default_deny = stack_rule(
    "k8s-namespace-default-deny", "Every namespace the stack creates denies traffic by default.", _default_deny,
    severity=Severity.HIGH, framework=cis("4.3.2", "Ensure that all Namespaces have Network Policies defined"),
    remediation="Add a NetworkPolicy with an empty podSelector and policyTypes [Ingress, Egress], then allow what "
                "the namespace needs (components/namespace.py does both).",
    config={"exempt": exempt_namespaces(namespaces.KUBERNETES)},
    unset=("No NetworkPolicy: every pod accepts all traffic (Kubernetes docs, network policies). policyTypes "
           "unset: Ingress, plus Egress only if egress rules are listed, so only a policy with both counts."))

no_default_namespace = resource_rule(
    "k8s-no-default-namespace", "Workloads do not run in the default namespace.", WORKLOADS,
    lambda p, c: ([f"{(p.get('metadata') or {}).get('name')} runs in the default namespace"]
                  if (p.get("metadata") or {}).get("namespace") in (None, "", "default") else []),
    severity=Severity.LOW, level=ADVISORY, framework=cis("4.5.2", "The default namespace should not be used"),
    remediation="Create a namespace for the workload and set metadata.namespace.",
    unset=("metadata.namespace unset: the provider's namespace, default unless set (Pulumi Kubernetes provider "
           "docs, namespace): advised against."))


SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
# A service account whose workloads call the Kubernetes API says so; the rest mount no token.
API_ACCESS_LABEL = "ml-platform/api-access"


def _sa_token(args: Any, _: dict) -> Iterator[str]:
    props = args.props
    if args.resource_type == SERVICE_ACCOUNT:
        labels = (props.get("metadata") or {}).get("labels") or {}
        if props.get("automountServiceAccountToken") is not False and labels.get(API_ACCESS_LABEL) != "true":
            yield (f"service account {(props.get('metadata') or {}).get('name')} mounts an API token into every pod; "
                   f"set automountServiceAccountToken: false (or label it {API_ACCESS_LABEL}: \"true\")")
        return
    pod = pod_spec(props)
    if pod.get("automountServiceAccountToken") is not False and not pod.get("serviceAccountName"):
        yield "the pod runs as the default service account with its token mounted"


default_service_account = resource_rule(
    "k8s-no-default-service-account-token",
    "Pods use their own service account or mount no token; service accounts mount none unless they need the API.",
    [*WORKLOADS, SERVICE_ACCOUNT], with_args=_sa_token, severity=Severity.MEDIUM,
    framework=cis("4.1.5", "Ensure that default service accounts are not actively used"),
    remediation="Set serviceAccountName to a dedicated account, and automountServiceAccountToken: false on "
                "accounts whose workloads do not call the Kubernetes API.",
    unset=("serviceAccountName unset: the namespace's default account; automountServiceAccountToken unset: true "
           "(Kubernetes docs, service accounts): fails."))


RULES = [
    no_privileged, no_privilege_escalation, run_as_non_root, drop_all_capabilities, no_host_namespaces, no_host_path,
    resources_set, image_pinned, probes, gpu_toleration, pdb_for_replicated, namespace_pod_security,
    internal_load_balancers, no_literal_secrets_in_env, no_secret_literals, helm_chart_pinned, namespace_default_deny,
    no_default_namespace, default_service_account,
]
