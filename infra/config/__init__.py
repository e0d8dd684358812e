"""Typed stack configuration: `Pulumi.<stack>.yaml` → one frozen `PlatformConfig`.

Every `ml-platform:*` key of the stack file is one section. Parsing happens
once, before any resource exists, so a bad file never leaves a partial stack.
Errors are collected and reported together, one line each, naming the file,
the key path as written in YAML, what was given and what is allowed.
"""

from catalog.pools import Disruption, Limits, NodePool
from infra.config.base import PROJECT, ConfigError
from infra.config.cluster import Cluster
from infra.config.loading import load, parse
from infra.config.network import FlowLogs, Network, Tags
from infra.config.platform import Gpu, Karpenter, PlatformConfig
from infra.config.tenancy import Team, TeamNamespace, Tenancy

__all__ = ["PROJECT", "Cluster", "ConfigError", "Disruption", "FlowLogs", "Gpu", "Karpenter", "Limits", "Network",
           "NodePool", "PlatformConfig", "Tags", "Team", "TeamNamespace", "Tenancy", "load", "parse"]
