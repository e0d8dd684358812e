"""Node launch rules: IMDSv2, encrypted volumes and no public IPs, wherever nodes are launched from.

Launch templates, Karpenter EC2NodeClasses, managed node groups, launch
configurations and plain instances. A property left out is judged by what
AWS then does, and here that is the weak setting every time:
- metadataOptions unset: the AMI decides. An AMI registered with ImdsSupport
  v2.0 gets tokens required and hop limit 2 (reachable from pods), any other
  allows IMDSv1 (EC2 user guide, "Configure the instance metadata options";
  configuring-IMDS-new-instances).
- no mapping for the root device: the volume is created from the AMI's
  snapshot, unencrypted for the EKS AMIs, so encrypted only if the account's
  EBS encryption by default is on (EC2 user guide, EBS encryption; that
  default is per region and outside the stack).
- a managed node group without a launch template: EKS creates one "with
  default values" (EKS user guide, launch-templates): both of the above.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    NODECLASS,
    eks_bp,
    resource_rule,
)

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
# The root device of the EKS-optimised AMIs (AL2, AL2023, Bottlerocket's OS volume) and of most others.
ROOT_DEVICES = ("/dev/xvda", "/dev/sda1")
# What Karpenter v1 sets for spec.metadataOptions fields left out: the EC2NodeClass CRD's defaults
# (tests/schemas/karpenter-1.14.1/ec2nodeclass.json; Karpenter docs, NodeClasses): already the hardened setting.
KARPENTER_METADATA_DEFAULTS = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
IMDS_FIX = "metadataOptions httpTokens: required and httpPutResponseHopLimit: 1"
ACCOUNT_DEFAULT = "encrypted only if the account's EBS encryption by default is on"
ROOT_FIX = "an encrypted gp3 root volume"


def _imds(options: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None) -> Iterator[str]:
    """`defaults`: what the launcher fills in for a field left out (None: the AMI decides, which is weak).

    Launch templates, EC2NodeClasses, instances and launch configurations all spell the fields the same.
    """
    if not options and defaults is None:
        yield ("metadataOptions is unset, so the AMI decides: IMDSv1 allowed, or with an ImdsSupport v2.0 AMI "
               "hop limit 2, which pods reach; pods could take the node's credentials")
        return
    options = {**(defaults or {}), **(options or {})}
    tokens, hops = options.get("httpTokens"), options.get("httpPutResponseHopLimit")
    if tokens != "required":
        yield f"IMDSv2 is not required (httpTokens={tokens!r}); pods could steal node credentials via IMDSv1"
    if float(hops or 2) > 1:
        yield f"httpPutResponseHopLimit is {hops!r}; set 1 so containers cannot reach the node's metadata service"


launch_template_imdsv2 = resource_rule(
    "launch-template-imdsv2", "Node launch templates require IMDSv2 with hop limit 1.", LAUNCH_TEMPLATE,
    lambda p, c: _imds(p.get("metadataOptions")),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set metadataOptions.httpTokens=required and httpPutResponseHopLimit=1 on the launch template.",
    unset=("metadataOptions unset: the AMI decides, IMDSv1 allowed or, on an ImdsSupport v2.0 AMI, tokens "
           "required at hop limit 2, which pods reach (EC2 user guide, configure IMDS for new instances): fails."))

nodeclass_imdsv2 = resource_rule(
    "karpenter-nodeclass-imdsv2", "Karpenter EC2NodeClasses require IMDSv2 with hop limit 1.", NODECLASS,
    lambda p, c: _imds((p.get("spec") or {}).get("metadataOptions"), KARPENTER_METADATA_DEFAULTS),
    severity=Severity.HIGH, framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation="Set spec.metadataOptions.httpTokens=required and httpPutResponseHopLimit=1.",
    unset=("spec.metadataOptions (or a field of it) unset: httpTokens required and hop limit 1, the EC2NodeClass "
           "CRD's defaults (Karpenter v1.14.1 CRD; Karpenter docs, NodeClasses): passes."))


def _unencrypted(mappings: Any, truth: Any, root_from_ami: bool) -> Iterator[str]:
    """`root_from_ami`: an unmapped root volume comes from the AMI's snapshot (a launch template does that;
    Karpenter maps an encrypted one itself, except for amiFamily Custom)."""
    for mapping in mappings or []:
        ebs = mapping.get("ebs") or {}
        if ebs.get("encrypted") is None:
            yield (f"volume {mapping.get('deviceName')} leaves ebs.encrypted unset, so it is {ACCOUNT_DEFAULT}; "
                   "set ebs.encrypted")
        elif ebs.get("encrypted") not in truth:
            yield f"volume {mapping.get('deviceName')} is not encrypted; set ebs.encrypted"
    if root_from_ami and not any(m.get("deviceName") in ROOT_DEVICES for m in mappings or []):
        yield (f"no block device mapping for the root volume (/dev/xvda), so it comes from the AMI's snapshot, "
               f"{ACCOUNT_DEFAULT}; map it with ebs.encrypted")


launch_template_ebs_encrypted = resource_rule(
    "launch-template-ebs-encrypted", "Node volumes from launch templates are encrypted.", LAUNCH_TEMPLATE,
    lambda p, c: _unencrypted(p.get("blockDeviceMappings"), ("true", True), root_from_ami=True),
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set blockDeviceMappings[].ebs.encrypted to true.",
    unset=("No mapping for /dev/xvda: the root volume comes from the AMI's snapshot, encrypted only if the "
           "region's EBS encryption by default is on, a setting outside the stack (EC2 user guide, EBS "
           "encryption): fails. ebs.encrypted unset: false, fails."))

def _nodeclass_volumes(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    spec = props.get("spec") or {}
    mappings = spec.get("blockDeviceMappings")
    yield from _unencrypted(mappings, (True,), root_from_ami=spec.get("amiFamily") == "Custom" and not mappings)


nodeclass_ebs_encrypted = resource_rule(
    "karpenter-nodeclass-ebs-encrypted", "Node volumes from EC2NodeClasses are encrypted.", NODECLASS,
    _nodeclass_volumes,
    severity=Severity.HIGH, framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set spec.blockDeviceMappings[].ebs.encrypted: true.",
    unset=("spec.blockDeviceMappings unset: Karpenter maps an encrypted root volume itself, except for amiFamily "
           "Custom (Karpenter docs, NodeClasses, spec.blockDeviceMappings): passes. A mapping without encrypted "
           "takes the EC2 default: fails."))


def _lt_public_ip(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    for nic in props.get("networkInterfaces") or []:
        if nic.get("associatePublicIpAddress") in ("true", True):
            yield "a network interface associates a public IP; nodes belong in private subnets"


launch_template_no_public_ip = resource_rule(
    "launch-template-no-public-ip", "Launch templates never give nodes a public IP.", LAUNCH_TEMPLATE, _lt_public_ip,
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Drop associatePublicIpAddress from networkInterfaces (or set it to false).",
    unset=("networkInterfaces unset: the subnet's mapPublicIpOnLaunch decides, false unless set (Pulumi "
           "aws.ec2.Subnet docs), and subnet-no-auto-public-ip judges that: passes."))

nodeclass_no_public_ip = resource_rule(
    "karpenter-nodeclass-no-public-ip", "EC2NodeClasses explicitly turn public IPs off.", NODECLASS,
    lambda p, c: ([] if (p.get("spec") or {}).get("associatePublicIPAddress") is False else
                  ["spec.associatePublicIPAddress is not false; a public subnet would give nodes public IPs"]),
    severity=Severity.HIGH, framework=eks_bp("security#infrastructure-security"),
    remediation="Set spec.associatePublicIPAddress: false.",
    unset=("spec.associatePublicIPAddress unset: the subnet's MapPublicIpOnLaunch applies (Karpenter docs, "
           "NodeClasses). Karpenter picks subnets by tag, often ones the stack does not own: fails, say false."))


def _node_group_defaults(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    """A node group's own launch template is judged by the launch-template rules; without one, EKS's applies."""
    if props.get("launchTemplate"):
        return
    yield (f"no launch template, so EKS launches the nodes from its default one: the metadata service is reachable "
           f"from pods (hop limit 2) and the root volume (diskSize) is {ACCOUNT_DEFAULT}; give it a launch template "
           f"with {IMDS_FIX} and {ROOT_FIX}")


node_group_launch_template = resource_rule(
    "node-group-launch-template", "Managed node groups launch from a launch template that hardens IMDS and the root "
    "volume.", NODE_GROUP, _node_group_defaults, severity=Severity.HIGH,
    framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation=f"Pass launchTemplate {{id, version}} of a launch template with {IMDS_FIX} and a "
                "blockDeviceMappings entry for /dev/xvda with ebs.encrypted true and volumeType gp3.",
    unset=("launchTemplate unset: EKS creates one \"with default values\" (EKS user guide, launch templates): IMDS "
           "reachable from pods, and a root volume encrypted only by the account default: fails."))


def _from_template(props: Mapping[str, Any]) -> bool:
    """An instance launched from a launch template takes what it leaves out from there (judged as a template)."""
    return bool(props.get("launchTemplate"))


def _instance_imds(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    if _from_template(props) and not props.get("metadataOptions"):
        return
    yield from _imds(props.get("metadataOptions"))


instance_imdsv2 = resource_rule(
    "instance-imdsv2", "Instances and launch configurations require IMDSv2 with hop limit 1.",
    [INSTANCE, LAUNCH_CONFIGURATION], _instance_imds, severity=Severity.HIGH,
    framework=eks_bp("security#restrict-access-to-the-instance-profile"),
    remediation=f"Set {IMDS_FIX} (or launch the instance from a launch template that does).",
    unset=("metadataOptions unset: the AMI decides (EC2 user guide, configure IMDS for new instances): fails. An "
           "instance launched from a launch template is judged by the template."))


def _instance_volumes(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    root = props.get("rootBlockDevice")
    if not root and not _from_template(props):
        yield (f"rootBlockDevice is unset, so the root volume comes from the AMI's snapshot, {ACCOUNT_DEFAULT}; "
               "set rootBlockDevice.encrypted true")
    elif root and root.get("encrypted") not in (True, "true"):
        yield "the root volume is not encrypted; set rootBlockDevice.encrypted true"
    for device in props.get("ebsBlockDevices") or []:
        if device.get("encrypted") not in (True, "true"):
            yield f"volume {device.get('deviceName')} is not encrypted; set ebsBlockDevices[].encrypted true"


instance_ebs_encrypted = resource_rule(
    "instance-ebs-encrypted", "Volumes of instances and launch configurations are encrypted.",
    [INSTANCE, LAUNCH_CONFIGURATION], _instance_volumes, severity=Severity.HIGH,
    framework=eks_bp("security#encrypt-data-at-rest"),
    remediation="Set rootBlockDevice.encrypted and every ebsBlockDevices[].encrypted to true.",
    unset=("rootBlockDevice unset: the AMI snapshot's encryption or the account default (EC2 user guide, EBS "
           "encryption): fails. encrypted unset on a device: false (Pulumi aws.ec2.Instance docs), fails."))


RULES = [
    launch_template_imdsv2, nodeclass_imdsv2, launch_template_ebs_encrypted, nodeclass_ebs_encrypted,
    launch_template_no_public_ip, nodeclass_no_public_ip, node_group_launch_template, instance_imdsv2,
    instance_ebs_encrypted,
]
