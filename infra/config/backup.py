"""Backup config: `ml-platform:backup` — Velero schedules, volume data movement, bucket lifecycle.

A schedule backs up team namespaces (all of them unless it names some) or,
with clusterResources, the cluster-scoped objects. Prod sets moveVolumeData:
EBS snapshots never leave their region, so only volume data copied into the
bucket reaches the DR region with the bucket's replica.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from catalog.model import Model, distinct, go_duration
from infra.config.base import cron, dns_labels, longest_gap_seconds


class BackupSchedule(Model):
    schedule: str = Field("0 */6 * * *", description="Cron schedule (UTC); the default gives a 6-hour RPO.")
    ttl: str = Field("720h", description="How long Velero keeps each backup (Go duration).")
    namespaces: list[str] | None = Field(
        None, description="Team namespaces to back up; default: every team namespace the stack creates.")
    cluster_resources: bool = Field(
        False, description="Back up only the cluster-scoped objects (CRDs, ClusterRoles, StorageClasses, PVs).")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron(value)

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        return go_duration(value, "720h or 168h", "TTL")

    @field_validator("namespaces")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        return None if names is None else distinct(names, "namespaces")

    @property
    def interval_seconds(self) -> int:
        """The longest gap between two runs: the RPO."""
        return longest_gap_seconds(self.schedule)

    @model_validator(mode="after")
    def _one_scope(self) -> BackupSchedule:
        if self.cluster_resources and self.namespaces:
            raise ValueError("a clusterResources schedule backs up cluster-scoped objects only: drop namespaces "
                             "(give them a schedule of their own)")
        return self


def _default_schedules() -> dict[str, BackupSchedule]:
    return {"teams": BackupSchedule()}


class Backup(Model):
    """Velero (`ml-platform:backup`)."""

    schedules: dict[str, BackupSchedule] = Field(
        default_factory=_default_schedules, description="Velero Schedules by name; default `teams`: every team "
        "namespace every 6 hours, kept 720 h.")
    move_volume_data: bool = Field(
        False, description="Copy volume data from CSI snapshots into the bucket (node agent on): required with a "
        "drRegion, since EBS snapshots stay in their region.")
    noncurrent_version_days: int = Field(
        30, ge=1, description="Days the bucket keeps an overwritten or deleted object version before expiring it.")

    @field_validator("schedules")
    @classmethod
    def _names(cls, schedules: dict[str, BackupSchedule]) -> dict[str, BackupSchedule]:
        dns_labels(schedules, "schedule")
        return schedules
