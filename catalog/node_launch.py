"""How every node launches, one spec rendered for both launchers.

IMDSv2 only with hop limit 1 (pods cannot reach the node's credentials; they
use Pod Identity) and an encrypted gp3 root volume. Managed node groups take
it as a launch template (pulumi_aws, snake_case), Karpenter as an
EC2NodeClass (camelCase); the policy pack checks both against the same values.
"""

from __future__ import annotations

from typing import Any

ROOT_DEVICE = "/dev/xvda"  # AL2023 root volume
HOP_LIMIT = 1
VOLUME_TYPE = "gp3"


def launch_template_metadata_options() -> dict[str, Any]:
    return {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": HOP_LIMIT,
            "instance_metadata_tags": "disabled"}


def launch_template_root_volume(size_gib: int) -> dict[str, Any]:
    return {"device_name": ROOT_DEVICE, "ebs": {"volume_size": size_gib, "volume_type": VOLUME_TYPE,
                                                "encrypted": "true", "delete_on_termination": "true"}}


def nodeclass_metadata_options() -> dict[str, Any]:
    return {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": HOP_LIMIT,
            "httpTokens": "required"}


def nodeclass_root_volume(size_gib: int) -> dict[str, Any]:
    return {"deviceName": ROOT_DEVICE, "ebs": {"volumeSize": f"{size_gib}Gi", "volumeType": VOLUME_TYPE,
                                               "encrypted": True, "deleteOnTermination": True}}
