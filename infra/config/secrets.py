"""Secrets config: `ml-platform:secrets` — External Secrets Operator and the secrets it syncs.

People put the values they provide into Secrets Manager themselves; config
names only where (a key under the stack's prefix) and who gets them (a
namespace and Secret keys). No value ever passes through config.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from catalog.model import Model, go_duration
from infra.config.base import dns_labels

REMOTE_KEY = re.compile(r"^[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class ExternalSecret(Model):
    namespace: str = Field(description="Namespace of the target Secret; one the stack creates.")
    remote_key: str = Field(description="Secrets Manager secret under the stack's prefix (ml-platform/<stack>/...).")
    properties: dict[str, str] = Field(
        min_length=1, description="Target Secret key -> JSON property of the secret value.")
    refresh_interval: str = Field("1h", description="How often ESO re-reads the value (rotation reaches pods).")

    @field_validator("remote_key")
    @classmethod
    def _under_prefix(cls, key: str) -> str:
        if not REMOTE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"{key!r} must be a relative key like hub-token or models/hub-token: it lives under "
                             f"the stack's prefix ml-platform/<stack>/, which ESO may read and nothing else")
        return key

    @field_validator("refresh_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        return go_duration(value, "15m or 1h")

    @field_validator("properties")
    @classmethod
    def _keys(cls, properties: dict[str, str]) -> dict[str, str]:
        bad = [k for k in properties if not SECRET_KEY.match(k)]
        if bad:
            raise ValueError(f"Secret keys {bad} may hold only letters, digits, '-', '_' and '.'")
        return properties


class Secrets(Model):
    """External Secrets Operator (`ml-platform:secrets`)."""

    replicas: int = Field(1, ge=1, le=3, description="Controller replicas (leader election on); 2 in prod.")
    recovery_window_days: int = Field(
        30, description="Days a deleted Secrets Manager secret stays recoverable (7-30), or 0 to delete at once "
                        "(dev: a destroy and re-create can reuse the names).")
    external_secrets: dict[str, ExternalSecret] = Field(
        default_factory=dict, description="Secrets to sync into the cluster, by target Secret name.")

    @field_validator("recovery_window_days")
    @classmethod
    def _window(cls, days: int) -> int:
        if days != 0 and not 7 <= days <= 30:
            raise ValueError(f"Secrets Manager keeps deleted secrets 7 to 30 days, or 0 to force deletion (got {days})")
        return days

    @field_validator("external_secrets")
    @classmethod
    def _names(cls, secrets: dict[str, ExternalSecret]) -> dict[str, ExternalSecret]:
        dns_labels(secrets, "Secret")
        return secrets
