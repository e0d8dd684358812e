"""Observability: what is scraped, the alerts (checked and unit-tested with promtool), routing, Grafana, logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from promtool_harness import check_and_test

from components.grafana import queries

ROOT = Path(__file__).parent.parent
ALERT_TESTS = Path(__file__).parent / "alerts" / "platform.test.yaml"


def _rules(stack) -> list[dict]:
    return stack.named("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "observability-rules").inputs[
        "spec"]["groups"]


def _alerts(stack) -> list[dict]:
    return [r for g in _rules(stack) for r in g["rules"] if "alert" in r]


def _values(stack, name="observability-stack") -> dict:
    return stack.named("kubernetes:helm.sh/v3:Release", name).inputs["values"]


def test_every_rule_file_passes_promtool_check(stack, tmp_path):
    check_and_test(_rules(stack), None, tmp_path)


def test_alerts_fire_on_synthetic_series_and_stay_quiet_otherwise(dev, tmp_path):
    check_and_test(_rules(dev), ALERT_TESTS, tmp_path)
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {a["alert"] for a in _alerts(dev)}, "every platform alert has a promtool case"


def test_every_dashboard_query_parses(stack, tmp_path):
    boards = {r.inputs["metadata"]["name"]: next(iter(r.inputs["data"].values()))
              for r in stack.of_type("kubernetes:core/v1:ConfigMap")
              if (r.inputs["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"}
    assert {"dashboard-ml-platform-capacity", "dashboard-ml-platform-cost", "dashboard-dcgm-exporter"} <= set(boards)
    # Grafana's own variables stand in for what Grafana substitutes.
    exprs = [re.sub(r"\$__range|\$__rate_interval|\$__interval", "1h", q).replace("$gpu", "0").replace(
        "$instance", "x") for q in queries(boards)]
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:query{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}
    check_and_test(rules["groups"], None, tmp_path)


def test_every_alert_says_how_bad_what_and_where_its_runbook_is(stack):
    for alert in _alerts(stack):
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        page = annotations["runbook_url"].rsplit("/docs/runbooks/", 1)[1]
        runbook = ROOT / "docs" / "runbooks" / page
        assert runbook.is_file(), f"{alert['alert']}: {runbook} is missing"
        assert f"# {alert['alert']}" in runbook.read_text(), f"{page} is not {alert['alert']}'s runbook"


def test_gpu_alerts_follow_the_configured_thresholds(dev):
    by_name = {a["alert"]: a for a in _alerts(dev)}
    assert by_name["GpuIdle"]["expr"] == "DCGM_FI_DEV_GPU_UTIL < 10" and by_name["GpuIdle"]["for"] == "30m"
    assert by_name["GpuMemoryHigh"]["expr"].endswith("> 90") and by_name["GpuMemoryHigh"]["for"] == "5m"


def test_a_missing_backup_alert_watches_each_schedule_at_twice_its_interval(prod):
    missing = {re.search(r'schedule="(\w+)"', a["expr"]).group(1): a["expr"] for a in _alerts(prod)
               if a["alert"] == "VeleroBackupMissing"}
    assert missing["teams"].endswith("> 43200") and missing["cluster"].endswith("> 172800")


def test_the_platform_s_exporters_are_scraped_where_they_run(stack):
    monitors = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in
                stack.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
                if r.inputs["metadata"]["namespace"] == "monitoring"}
    assert set(monitors) == {"karpenter", "velero", "external-secrets", "dcgm-exporter", "fluent-bit"}
    assert monitors["velero"]["namespaceSelector"] == {"matchNames": ["velero"]}
    assert monitors["velero"]["endpoints"][0]["port"] == "http-monitoring"
    eso = stack.named("kubernetes:helm.sh/v3:Release", "secrets-operator").inputs["values"]
    assert eso["metrics"]["service"]["enabled"] is True, "ESO renders its metrics Service only when asked"
    for namespace, port in (("velero", 8085), ("external-secrets", 8080), ("gpu", 9400)):
        (policy,) = [p for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                     if p.inputs["metadata"]["name"] == "allow-metrics-scrape"
                     and p.inputs["metadata"]["namespace"] == namespace]
        assert {"protocol": "TCP", "port": port} in policy.inputs["spec"]["ingress"][0]["ports"]


def test_prometheus_selects_everything_keeps_what_config_says_and_is_ha_in_prod(stack):
    values = _values(stack)
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
    prod = stack.stack == "prod"
    assert (spec["retention"], spec["retentionSize"]) == (("30d", "85GB") if prod else ("7d", "20GB"))
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == ("100Gi" if prod else "30Gi")
    assert spec["replicas"] == values["alertmanager"]["alertmanagerSpec"]["replicas"] == (2 if prod else 1)
    assert values["prometheus"]["podDisruptionBudget"]["enabled"] is prod
    assert values["alertmanager"]["podDisruptionBudget"]["enabled"] is prod
    assert values["crds"] == {"enabled": False}, "CRDs come from prometheus-operator-crds, which Helm upgrades"
    assert spec["nodeSelector"] == {"ml-platform/pool": "system"}
    # EKS hides these: scraping them would only keep their *Down alerts firing.
    assert all(values[c] == {"enabled": False} for c in ("kubeControllerManager", "kubeScheduler", "kubeEtcd",
                                                          "kubeProxy"))


def test_alertmanager_routes_critical_to_paging_warnings_to_chat_with_secrets_from_eso(stack):
    config = stack.named("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig", "observability-routing")
    route, receivers = config.inputs["spec"]["route"], {r["name"]: r for r in config.inputs["spec"]["receivers"]}
    assert (route["groupBy"], route["groupWait"], route["groupInterval"], route["repeatInterval"]) == (
        ["alertname", "namespace"], "30s", "5m", "4h")
    targets = {m["value"]: r["receiver"] for r in route["routes"] for m in r["matchers"]}
    if stack.stack == "prod":
        assert targets["critical"] == "paging" and targets["Watchdog"] == "heartbeat"
        assert receivers["paging"]["pagerdutyConfigs"][0]["routingKey"] == {
            "name": "alertmanager-receivers", "key": "pagerduty-routing-key"}
    else:
        assert "critical" not in targets and targets["Watchdog"] == "null"
    assert receivers["chat"]["slackConfigs"][0]["apiURL"] == {"name": "alertmanager-receivers",
                                                             "key": "slack-webhook-url"}
    assert all(m.get("matchType") for r in route["routes"] for m in r["matchers"]), "matchers, not match"
    assert _values(stack)["alertmanager"]["alertmanagerSpec"]["alertmanagerConfiguration"] == {"name": "platform"}
    synced = stack.named("kubernetes:external-secrets.io/v1:ExternalSecret", "observability-receivers-"
                         "alertmanager-receivers")
    assert synced.inputs["metadata"]["namespace"] == "monitoring"


def test_grafana_starts_with_a_generated_admin_password_synced_by_eso(stack):
    admin = stack.named("kubernetes:external-secrets.io/v1:ExternalSecret", "observability-grafana-admin-sync")
    assert admin.inputs["metadata"]["name"] == "grafana-admin"
    assert {d["secretKey"] for d in admin.inputs["spec"]["data"]} == {"admin-user", "admin-password"}
    grafana = _values(stack)["grafana"]
    assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                                "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana
    release = stack.named("kubernetes:helm.sh/v3:Release", "observability-stack")
    assert admin.urn in release.dependencies


def test_kube_state_metrics_exports_the_node_labels_the_dashboards_group_by(stack):
    (allow,) = _values(stack)["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allow.startswith("nodes=[") and "ml-platform/pool" in allow and "karpenter.sh/capacity-type" in allow
    cost = json.loads(stack.named("kubernetes:core/v1:ConfigMap", "observability-dashboard-ml-platform-cost")
                      .inputs["data"]["ml-platform-cost.json"])
    assert any("label_ml_platform_pool" in t["expr"] for p in cost["panels"] for t in p["targets"])


def test_container_logs_go_to_one_log_group_through_a_scoped_pod_identity(stack):
    group = stack.named("aws:cloudwatch/logGroup:LogGroup", "observability-containers")
    assert group.inputs["name"] == f"/aws/eks/ml-platform-{stack.stack}/containers"
    assert group.inputs["retentionInDays"] == (90 if stack.stack == "prod" else 14)
    association = stack.named("aws:eks/podIdentityAssociation:PodIdentityAssociation", "observability-fluent-bit")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("monitoring", "fluent-bit")
    (statement,) = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "observability-fluent-bit")
                              .inputs["policy"])["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == f"{group.state['arn']}:*"
    values = _values(stack, "observability-fluent-bit")
    assert values["serviceAccount"]["name"] == "fluent-bit"
    assert f"log_group_name {group.inputs['name']}" in values["config"]["outputs"]
    assert "auto_create_group Off" in values["config"]["outputs"]
