"""Run one rule over a handful of resources through the pack's own offline runner."""

from __future__ import annotations

from typing import Any

from infra.offline import Recording, Resource
from policies import runner

PROVIDER_URN = "urn:pulumi:test::ml-platform::pulumi:providers:aws::aws"


def resource(type_: str, name: str, inputs: dict[str, Any], **deps: list[Resource]) -> Resource:
    """A recorded resource; keyword arguments name property dependencies (bucket=[bucket_resource])."""
    return Resource(urn=f"urn:pulumi:test::ml-platform::{type_}::{name}", id=f"{name}-id", type=type_, name=name,
                    parent=None, custom=True, inputs=inputs, provider=f"{PROVIDER_URN}::provider-id",
                    property_dependencies={k: [r.urn for r in v] for k, v in deps.items()})


def aws_provider(tags: dict[str, str]) -> Resource:
    import json
    return Resource(urn=PROVIDER_URN, id="provider-id", type="pulumi:providers:aws", name="aws", parent=None,
                    custom=True, inputs={"region": "us-east-1", "defaultTags": json.dumps({"tags": tags})})


def findings(rule: Any, resources: list[Resource], config: dict[str, Any] | None = None) -> list[runner.Finding]:
    # The runner reads resources through its own JSON copy of their props: nothing here is changed.
    recording = Recording(stack="test", resources=list(resources), outputs={}, secret_outputs=set())
    return runner.check(recording, {rule.name: config} if config else {}, rules=[rule])
