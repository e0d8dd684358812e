"""Network rules: subnets, security groups, VPC address space and flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policies.support import (
    OPEN,
    as_list,
    each_has,
    eks_bp,
    num,
    resource_rule,
    stack_rule,
)

subnet_no_auto_public_ip = resource_rule(
    "subnet-no-auto-public-ip", "Subnets do not map public IPs on launch.", "aws:ec2/subnet:Subnet",
    lambda p, c: (["mapPublicIpOnLaunch is true; every instance launched here gets a public IP"]
                  if p.get("mapPublicIpOnLaunch") is True else []),
    severity=Severity.MEDIUM, framework=eks_bp("security#infrastructure-security"),
    remediation="Set mapPublicIpOnLaunch=false; NAT gateways and load balancers bring their own addresses.",
    unset="mapPublicIpOnLaunch unset: false (Pulumi aws.ec2.Subnet docs): passes.")


def _open_ingress(rules: Any, allowed_ports: list[int]) -> Iterator[str]:
    for rule in rules:
        cidrs = {*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks")),
                 *as_list(rule.get("cidrIpv4")), *as_list(rule.get("cidrIpv6"))}
        open_to = cidrs & OPEN
        if open_to and str(rule.get("protocol", rule.get("ipProtocol"))).lower() in ("-1", "all"):
            # Protocol -1 means every protocol on every port; EC2 ignores the ports given with it.
            yield (f"ingress from {', '.join(sorted(open_to))} on every protocol and port (protocol -1); "
                   f"only {', '.join(num(p) for p in allowed_ports)} may be open to the internet (load balancers)")
            continue
        ports = (float(rule.get("fromPort", -1)), float(rule.get("toPort", -1)))
        if open_to and not (ports[0] == ports[1] and ports[0] in allowed_ports):
            yield (f"ingress from {', '.join(sorted(open_to))} on ports {ports[0]:.0f}-{ports[1]:.0f}; "
                   f"only {', '.join(num(p) for p in allowed_ports)} may be open to the internet (load balancers)")


def _security_group_ingress(props: Mapping[str, Any], config: dict) -> Iterator[str]:
    rules = props.get("ingress") or []
    if "type" in props:  # aws:ec2/securityGroupRule
        rules = [props] if props.get("type") == "ingress" else []
    elif "ipProtocol" in props:  # aws:vpc/securityGroupIngressRule
        rules = [props]
    yield from _open_ingress(rules, config["allowedPorts"])


security_group_no_open_ingress = resource_rule(
    "security-group-no-open-ingress", "No security group ingress from 0.0.0.0/0 or ::/0 except HTTPS.",
    ["aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
     "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"],
    _security_group_ingress, severity=Severity.CRITICAL,
    framework=eks_bp("security#network-security"),
    remediation="Restrict the source to the CIDRs that need access; only 443 on load balancers may be public.",
    config={"allowedPorts": {"type": "array", "items": {"type": "integer"}, "default": [443]}},
    unset=("No ingress rules: a new security group admits nothing inbound (VPC user guide, security groups): "
           "passes. Protocol -1 opens every port, whatever the ports say."))


vpc_flow_logs = stack_rule(
    "vpc-flow-logs", "Every VPC records flow logs of all traffic.",
    each_has("aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog", "vpcId", lambda p: p.get("trafficType") == "ALL",
              "VPC {name} has no flow log capturing ALL traffic"),
    severity=Severity.MEDIUM, framework=eks_bp("security#network-security"),
    remediation="Add an aws.ec2.FlowLog with trafficType ALL (network.flowLogs config).",
    unset="No flow log: the VPC records no traffic (VPC user guide, flow logs): fails.")


def _private_cidr(props: Mapping[str, Any], _: dict) -> Iterator[str]:
    cidr = props.get("cidrBlock")
    if cidr and not ipaddress.ip_network(cidr).is_private:
        yield f"VPC CIDR {cidr} is not a private range"


vpc_private_range = resource_rule(
    "vpc-private-cidr", "VPCs use private (RFC 1918) address space.", "aws:ec2/vpc:Vpc", _private_cidr,
    severity=Severity.LOW, framework=eks_bp("networking"),
    remediation="Use a 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 range for network.cidr.",
    unset="n/a: judges the range that is set; an IPAM-allocated range is not known to the rule and passes.")


RULES = [
    subnet_no_auto_public_ip, security_group_no_open_ingress, vpc_flow_logs, vpc_private_range,
]
