"""The project's mock engine: run the real program for a stack without a cloud.

`run("dev")` reads Pulumi.dev.yaml, hands it to the Pulumi runtime as the
engine would, runs `infra/__main__.py` inside a stack exactly as the Python
language host does (`run_in_stack`), and records every resource: type, name,
parent, inputs as the engine receives them (camelCase, as a policy analyzer
sees them), resource options and the stack outputs. The cloud's side is
played by `MockCloud`, which answers with realistic IDs, ARNs, endpoints and
the data sources the program reads. Tests, `mlp plan` and the policy runner
all use this one engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.config import PROJECT
from infra.config.stack_file import ROOT, read_stack_config

PROGRAM = ROOT / "infra" / "__main__.py"
ACCOUNT_ID = "111122223333"


@dataclass
class Resource:
    urn: str
    id: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    provider: str | None = None
    delete_timeout: str | None = None


@dataclass
class Recording:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> Resource:
        found = [r for r in self.of_type(type_) if r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_))
            raise KeyError(f"{len(found)} {type_} named {name!r} in {self.stack}; have: {names}")
        return found[0]

    def component_of(self, resource: Resource) -> Resource | None:
        """The nearest ml-platform component that owns `resource`."""
        by_urn = {r.urn: r for r in self.resources}
        parent = by_urn.get(resource.parent or "")
        while parent is not None and not parent.type.startswith(f"{PROJECT}:"):
            parent = by_urn.get(parent.parent or "")
        return parent


# --- the cloud's side --------------------------------------------------------------------


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class MockCloud(pulumi.runtime.Mocks):
    """Answers for AWS and Kubernetes: deterministic IDs and what the program reads back."""

    def __init__(self, region: str, preview: bool = False):
        self.region = region
        self.preview = preview

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        token = args.typ
        if self.preview:
            # A first preview: nothing exists, so ids and every computed output are unknown; providers
            # echo the inputs they were given, and no Kubernetes output is known while the cluster does
            # not exist.
            return "", {} if token.startswith("kubernetes:") else dict(args.inputs)
        state = dict(args.inputs)
        rid = f"{token.rsplit(':', 1)[-1].lower()}-{_hex(token, args.name)}"
        if token.startswith("aws:"):
            service = token.split(":")[1].split("/")[0]
            physical = state.get("name") or f"{args.name}-{_hex(args.name, length=7)}"
            state.setdefault("arn", f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{physical}")
            state.setdefault("name", physical)
        if token == "aws:eks/cluster:Cluster":
            issuer = f"https://oidc.eks.{self.region}.amazonaws.com/id/{_hex(args.name, length=32).upper()}"
            state.update(
                endpoint=f"https://{_hex(args.name, length=32).upper()}.gr7.{self.region}.eks.amazonaws.com",
                certificateAuthority={"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm1vY2sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="},
                identities=[{"oidcs": [{"issuer": issuer}]}],
                vpcConfig={**state.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_hex(args.name)}"},
                status="ACTIVE",
            )
        elif token == "aws:eks/nodeGroup:NodeGroup":
            state["nodeGroupName"] = f"{state.get('nodeGroupNamePrefix', '')}{_hex(args.name, length=8)}"
        elif token == "aws:ec2/launchTemplate:LaunchTemplate":
            state.update(latestVersion=1, defaultVersion=1)
        elif token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{state['url'].removeprefix('https://')}"
        elif token == "aws:s3/bucket:Bucket":
            state["bucket"] = state["name"]
            state["arn"] = f"arn:aws:s3:::{state['name']}"
        elif token == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{state['name']}"
        elif token == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{state['name']}"
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                    "userId": "AIDAOFFLINE", "id": ACCOUNT_ID}, []
        raise NotImplementedError(f"the offline engine has no answer for data source {args.token}")


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, keeping what the engine would see: parents, options, outputs."""

    def __init__(self, cloud: MockCloud):
        super().__init__(cloud)
        self.keep_unknowns = cloud.preview
        self.recorded: list[Resource] = []
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(Resource(
                urn=response.urn,
                id=response.id,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=request.custom,
                # In a preview, a value not known yet stays the engine's unknown marker, as an analyzer gets it.
                inputs=_unknowns_as_markers(rpc.deserialize_properties(request.object,
                                                                       keep_unknowns=self.keep_unknowns)),
                state=self.resources[response.urn].state if response.urn in self.resources else {},
                protect=bool(request.protect),
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                ignore_changes=list(request.ignoreChanges),
                provider=request.provider or None,
                delete_timeout=request.customTimeouts.delete or None,
            ))
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 (gRPC method name)
        self.outputs[request.urn] = request.outputs
        return super().RegisterResourceOutputs(request)


def _unknowns_as_markers(value: Any) -> Any:
    """The SDK's Unknown objects as the wire's unknown string, which the policy SDK's proxy recognises."""
    if isinstance(value, pulumi.output.Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _unknowns_as_markers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknowns_as_markers(v) for v in value]
    return value


def run(stack: str, root: Path = ROOT, raw: dict[str, Any] | None = None, preview: bool = False) -> Recording:
    """Run the program for `stack` under the mock engine; raises ConfigError on bad config.

    `raw` is the stack file's config map when the caller has read it already; `preview` records
    what a first `pulumi preview` would send (values known only after create left unknown).
    """
    raw = read_stack_config(stack, root) if raw is None else raw
    return record(lambda: runpy.run_path(str(PROGRAM), run_name="__main__"), stack, raw, preview)


def record(program: Callable[[], Any], stack: str, raw: dict[str, Any], preview: bool = False) -> Recording:
    """Run any Pulumi program (the stack, or one component built by a test) and record what it creates."""
    region = raw.get("aws:region", "us-east-1")
    cloud = MockCloud(str(region), preview)
    monitor = RecordingMonitor(cloud)
    settings.reset_options(project=PROJECT, stack=stack)
    mocks.set_mocks(cloud, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    # set_mocks leaves a finished root stack behind; the program gets its own, as in a real run.
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()})
    # The SDK runs engine calls on the loop's default thread pool, and the mock engine gives each
    # worker thread an event loop of its own: a pool per run, ended with it, leaves no orphaned loop
    # to complain at interpreter exit (nor threads piling up over many runs in one process).
    workers = ThreadPoolExecutor(thread_name_prefix="mock-engine")
    asyncio.get_event_loop().set_default_executor(workers)
    try:
        _sync_await(run_in_stack(program))
    finally:
        workers.shutdown(wait=True)

    stack_urn = f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
    exported = json_format.MessageToDict(monitor.outputs.get(stack_urn) or Struct())
    outputs, secrets = {}, set()
    for key, value in exported.items():
        if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            value = value["value"]
            secrets.add(key)
        outputs[key] = value
    return Recording(stack=stack, resources=monitor.recorded, outputs=outputs, secret_outputs=secrets)
