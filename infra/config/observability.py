"""Observability config: `ml-platform:observability` — Prometheus, Alertmanager routing, alert thresholds, logs.

Receivers name an ExternalSecret (in `secrets.externalSecrets`, namespace
monitoring) and a key of it: the webhook URL or routing key lives in
Secrets Manager, never here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from catalog.model import Model, go_duration
from infra.config.base import retention

# Prometheus' own units (--storage.tsdb.retention.time / .size).
PROMETHEUS_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
PROMETHEUS_SIZE = re.compile(r"^[0-9]+(B|KB|MB|GB|TB|PB|EB)$")


class Prometheus(Model):
    replicas: int = Field(1, ge=1, le=3, description="Prometheus replicas (each scrapes everything); 2 in prod.")
    retention: str = Field("15d", description="How long Prometheus keeps samples (Prometheus duration: 15d, 4w).")
    retention_size: str = Field("40GB", description="Size at which Prometheus drops the oldest blocks (40GB).")
    storage_gib: int = Field(50, alias="storageGiB", ge=10, le=16384,
                             description="Encrypted gp3 volume per replica, GiB; keep it above retentionSize.")

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not PROMETHEUS_DURATION.match(value):
            raise ValueError(f"{value!r} is not a Prometheus duration like 15d, 4w or 720h (units ms s m h d w y)")
        return value

    @field_validator("retention_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not PROMETHEUS_SIZE.match(value):
            raise ValueError(f"{value!r} is not a Prometheus size like 40GB (units B KB MB GB TB PB EB)")
        return value

    @model_validator(mode="after")
    def _fits(self) -> Prometheus:
        # Prometheus reads sizes in powers of 1024 (units.Base2Bytes); the WAL and compaction need headroom.
        number, unit = re.match(r"^([0-9]+)([A-Z]+)$", self.retention_size).groups()
        gib = int(number) * 1024 ** (["B", "KB", "MB", "GB", "TB", "PB", "EB"].index(unit) - 3)
        if gib > 0.85 * self.storage_gib:
            raise ValueError(f"retentionSize {self.retention_size} leaves no room on a {self.storage_gib} GiB volume "
                             f"for the WAL and compaction: keep it at most 85 % of storageGiB")
        return self


class Receiver(Model):
    """Where one class of alerts goes; the URL or key is a key of an ExternalSecret in `monitoring`."""

    type: Literal["pagerduty", "slack", "webhook"] = Field(description="Alertmanager integration.")
    secret: str = Field(description="ExternalSecret (secrets.externalSecrets) in namespace monitoring.")
    key: str = Field(description="Key of that Secret holding the routing key (pagerduty) or URL (slack, webhook).")
    channel: str | None = Field(None, description="Slack channel, e.g. #ml-platform-alerts.")


class Receivers(Model):
    paging: Receiver | None = Field(None, description="Critical alerts (pages a person).")
    chat: Receiver | None = Field(None, description="Warnings (a chat channel).")
    heartbeat: Receiver | None = Field(
        None, description="The always-firing Watchdog alert, for a dead man's switch; unset: dropped.")


class Thresholds(Model):
    """Alert thresholds (docs/runbooks/ explains each alert)."""

    gpu_idle_percent: int = Field(10, ge=1, le=100, description="GPU utilisation below which a GPU is idle.")
    gpu_idle_for: str = Field("30m", description="How long a GPU stays idle before GpuIdle fires.")
    gpu_memory_percent: int = Field(90, ge=1, le=100, description="Framebuffer use above which GpuMemoryHigh fires.")
    gpu_memory_for: str = Field("5m", description="How long before GpuMemoryHigh fires.")
    pending_for: str = Field("15m", description="How long pods wait at a NodePool limit before it fires.")
    external_secret_failing_for: str = Field("15m", description="How long an ExternalSecret may be not Ready.")

    @field_validator("gpu_idle_for", "gpu_memory_for", "pending_for", "external_secret_failing_for")
    @classmethod
    def _for(cls, value: str) -> str:
        return go_duration(value, "5m or 30m", "duration")


class Logs(Model):
    retention_days: int = Field(30, description="CloudWatch retention of container logs, days.")

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        return retention(days)


class Observability(Model):
    """Monitoring, alerting, dashboards and container logs (`ml-platform:observability`)."""

    runbooks_url: str = Field(description="Base URL of docs/runbooks/ in your repository: each alert links its "
                              "page there (runbook_url).")

    prometheus: Prometheus = Field(default_factory=Prometheus, description="Prometheus replicas and retention.")
    alertmanager_replicas: int = Field(1, ge=1, le=3, description="Alertmanager replicas (they gossip); 2 in prod.")
    receivers: Receivers = Field(default_factory=Receivers, description="Alert receivers by class.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Alert thresholds.")
    logs: Logs = Field(default_factory=Logs, description="Container logs to CloudWatch.")

    @field_validator("runbooks_url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not re.match(r"^https://[^\s/]+/\S*$", url):
            raise ValueError(f"{url!r} is not an https URL like https://github.com/<org>/ml-platform/blob/main/"
                             f"docs/runbooks")
        return url
