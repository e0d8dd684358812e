"""Node launch rules: launch templates and Karpenter EC2NodeClasses (IMDSv2, encrypted volumes, no public IPs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    LAUNCH_TEMPLATE,
    NODECLASS,
    eks_bp,
    resource_rule,
)


def _imds(options: Mapping[str, Any] | None, tokens: str, hop: str) -> Iterator[str]:
    options = options or {}
    if options.get(tokens) != "required":
        yield f"IMDSv2 is not required ({tokens}={options.get(tokens)!r}); pods could steal node credentials via IMDSv1"
    if float(options.get(hop) or 2) > 1:
        yield f"{hop} is {options.get(hop)!r}; set 1 so containers cannot reach the node's metadata service"


launch_template_imdsv2 = resource_rule(
    "launch-template-imdsv2", "Node launch templates require IMDSv2 with hop limit 1.", LAUNCH_TEMPLATE,
    lambda p, c: _imds(p.get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit"),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set metadataOptions.httpTokens=required and httpPutResponseHopLimit=1 on the launch template.")

nodeclass_imdsv2 = resource_rule(
    "karpenter-nodeclass-imdsv2", "Karpenter EC2NodeClasses require IMDSv2 with hop limit 1.", NODECLASS,
    lambda p, c: _imds((p.get("spec") or {}).get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit"),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set spec.metadataOptions.httpTokens=required and httpPutResponseHopLimit=1.")


def _unencrypted(mappings: Any, truth: Any) -> Iterator[str]:
    for mapping in mappings or []:
        ebs = mapping.get("ebs") or {}
        if ebs.get("encrypted") not in truth:
            yield f"volume {mapping.get('deviceName')} is not encrypted; set ebs.encrypted"


launch_template_ebs_encrypted = resource_rule(
    "launch-template-ebs-encrypted", "Node volumes from launch templates are encrypted.", LAUNCH_TEMPLATE,
    lambda p, c: _unencrypted(p.get("blockDeviceMappings"), ("true", True)),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set blockDeviceMappings[].ebs.encrypted to true.")

nodeclass_ebs_encrypted = resource_rule(
    "karpenter-nodeclass-ebs-encrypted", "Node volumes from EC2NodeClasses are encrypted.", NODECLASS,
    lambda p, c: _unencrypted((p.get("spec") or {}).get("blockDeviceMappings"), (True,)),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set spec.blockDeviceMappings[].ebs.encrypted: true.")


def _lt_public_ip(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for nic in props.get("networkInterfaces") or []:
        if nic.get("associatePublicIpAddress") in ("true", True):
            yield "a network interface associates a public IP; nodes belong in private subnets"


launch_template_no_public_ip = resource_rule(
    "launch-template-no-public-ip", "Launch templates never give nodes a public IP.", LAUNCH_TEMPLATE, _lt_public_ip,
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Drop associatePublicIpAddress from networkInterfaces (or set it to false).")

nodeclass_no_public_ip = resource_rule(
    "karpenter-nodeclass-no-public-ip", "EC2NodeClasses explicitly turn public IPs off.", NODECLASS,
    lambda p, c: ([] if (p.get("spec") or {}).get("associatePublicIPAddress") is False else
                  ["spec.associatePublicIPAddress is not false; a public subnet would give nodes public IPs"]),
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Set spec.associatePublicIPAddress: false.")


RULES = [
    launch_template_imdsv2, nodeclass_imdsv2, launch_template_ebs_encrypted, nodeclass_ebs_encrypted,
    launch_template_no_public_ip, nodeclass_no_public_ip,
]
