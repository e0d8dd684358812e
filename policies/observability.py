"""Observability: alerts that say how bad and where the runbook is, receivers without secrets, encrypted volumes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import Severity

from policies.support import as_list, eks_bp, of_type, resource_rule, stack_rule

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
ALERTMANAGER_CONFIG = "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"
RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_CSI = "ebs.csi.aws.com"
# Alertmanager receiver fields that carry a credential (alertmanager.yml and AlertmanagerConfig spellings).
SECRET_FIELDS = ("url", "api_url", "apiURL", "routing_key", "routingKey", "service_key", "serviceKey",
                 "webhook_url", "bot_token", "api_key", "apiKey", "token")


def _alert_metadata(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for group in as_list((props.get("spec") or {}).get("groups")):
        for rule in as_list((group or {}).get("rules") if isinstance(group, Mapping) else None):
            if not isinstance(rule, Mapping) or "alert" not in rule:
                continue
            labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
            missing = [k for k, present in (("severity", "severity" in labels),
                                            ("summary", "summary" in annotations),
                                            ("runbook_url", "runbook_url" in annotations)) if not present]
            if missing:
                yield f"alert {rule.get('alert')} has no {', '.join(missing)}: whoever is paged cannot act on it"


prometheus_rule_metadata = resource_rule(
    "prometheus-alert-metadata", "Every alert has a severity, a summary and a runbook_url.", PROMETHEUS_RULE,
    _alert_metadata, severity=Severity.MEDIUM, framework=eks_bp("reliability"),
    remediation="Give each alert labels.severity and annotations.summary and runbook_url (components/alerts.py).",
    unset=("severity and annotations unset: the alert routes to the default receiver with no summary or runbook "
           "(Prometheus docs, alerting rules): fails."))


def _literal_secrets(value: Any, path: str) -> Iterator[str]:
    """Credential fields holding a literal string, anywhere under `value`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in SECRET_FIELDS and isinstance(item, str) and item:
                yield f"{path}.{key}"
            else:
                yield from _literal_secrets(item, f"{path}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            yield from _literal_secrets(item, f"{path}[{i}]")


def _receiver_secrets(args: Any, _: dict) -> Iterator[str]:
    props = args.props
    if args.resource_type == ALERTMANAGER_CONFIG:
        found = _literal_secrets((props.get("spec") or {}).get("receivers"), "spec.receivers")
    elif props.get("chart") in ("kube-prometheus-stack", "alertmanager"):
        config = ((props.get("values") or {}).get("alertmanager") or {}).get("config") \
            if props.get("chart") == "kube-prometheus-stack" else (props.get("values") or {}).get("config")
        found = _literal_secrets(config, "alertmanager.config")
    else:
        return
    for where in found:
        yield (f"{where} holds a receiver credential in plain text: it lands in Pulumi state and a Secret anyone "
               f"with read access to the namespace sees; reference a Secret ESO syncs instead")


alertmanager_receiver_secrets = resource_rule(
    "alertmanager-receiver-secrets", "Alert receivers read URLs and keys from Secrets, never from values.",
    [ALERTMANAGER_CONFIG, RELEASE], with_args=_receiver_secrets, severity=Severity.HIGH,
    framework=eks_bp("security#data-encryption-and-secrets-management"),
    remediation="Use an AlertmanagerConfig whose receivers reference keys of an ExternalSecret's Secret "
                "(apiURL, routingKey, urlSecret), as components/alerts.py does.",
    unset="n/a: judges the receiver fields that are there.")


def _encrypted(storage_class: Any) -> bool:
    parameters = storage_class.props.get("parameters") or {}
    return str(parameters.get("encrypted")).lower() == "true"


def _storage_class_encrypted(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    # EBS CSI default: unencrypted unless the account's EBS encryption by default is on (aws-ebs-csi-driver
    # docs/parameters.md: `encrypted` defaults to false).
    if props.get("provisioner") == EBS_CSI and str((props.get("parameters") or {}).get("encrypted")).lower() != "true":
        yield (f"StorageClass {(props.get('metadata') or {}).get('name')} provisions unencrypted EBS volumes; "
               f"set parameters.encrypted: \"true\"")


storage_class_encrypted = resource_rule(
    "k8s-storageclass-encrypted", "EBS StorageClasses create encrypted volumes.", STORAGE_CLASS,
    _storage_class_encrypted, severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set parameters.encrypted: \"true\" (and a kmsKeyId) on every ebs.csi.aws.com StorageClass.",
    unset=("parameters.encrypted unset: the EBS CSI driver creates unencrypted volumes unless the account "
           "default is on (aws-ebs-csi-driver docs, parameters): fails."))


def _claims(values: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    prometheus = ((values.get("prometheus") or {}).get("prometheusSpec") or {}).get("storageSpec")
    alertmanager = ((values.get("alertmanager") or {}).get("alertmanagerSpec") or {}).get("storage")
    for where, spec in (("prometheus", prometheus), ("alertmanager", alertmanager)):
        if spec:
            yield where, (((spec or {}).get("volumeClaimTemplate") or {}).get("spec") or {}).get("storageClassName")


def _monitoring_volumes(resources, _config) -> Iterator[tuple[str, str | None]]:
    classes = {(c.props.get("metadata") or {}).get("name"): c for c in of_type(resources, STORAGE_CLASS)}
    default = next((c for c in classes.values() if ((c.props.get("metadata") or {}).get("annotations") or {})
                    .get("storageclass.kubernetes.io/is-default-class") == "true"), None)
    for release in of_type(resources, RELEASE):
        if release.props.get("chart") != "kube-prometheus-stack":
            continue
        for where, name in _claims(release.props.get("values") or {}):
            chosen = classes.get(name) if name else default
            if chosen is None or not _encrypted(chosen):
                yield (f"{where}'s volume uses StorageClass {name or '(the default)'}, which the stack does not "
                       f"define as encrypted: metrics and silences would sit on unencrypted EBS"), release.urn


monitoring_volumes_encrypted = stack_rule(
    "monitoring-volumes-encrypted", "Prometheus and Alertmanager volumes use an encrypted StorageClass.",
    _monitoring_volumes, severity=Severity.MEDIUM, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set storageClassName to the stack's encrypted gp3 StorageClass in the chart's storage specs.",
    unset=("storageClassName unset: the cluster's default StorageClass (Kubernetes docs, storage classes), "
           "judged as that class; no default class in the stack: fails."))

RULES = [prometheus_rule_metadata, alertmanager_receiver_secrets, storage_class_encrypted,
         monitoring_volumes_encrypted]
