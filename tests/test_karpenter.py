"""Karpenter: NodePools per pool, launch settings, interruption queue wiring, scoped IAM, Helm values."""

from __future__ import annotations

import json

import pytest

from catalog.instances import INSTANCES
from catalog.pools import duration_seconds
from components.karpenter_iam import INTERRUPTION_EVENTS, INTERRUPTION_QUEUE_ACTIONS
from infra.config import parse
from infra.config.stack_file import read_stack_config

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _config(name):
    return parse(read_stack_config(name), stack=name)


def _node_pools(recording):
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in recording.of_type(NODEPOOL)}


def _node_classes(recording):
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in recording.of_type(NODECLASS)}


def _requirement(spec, key):
    (found,) = [r for r in spec["template"]["spec"]["requirements"] if r["key"] == key]
    return found


def _release(recording, chart):
    (found,) = [r for r in recording.of_type(RELEASE) if r.inputs["name"] == chart]
    return found


def test_one_nodepool_and_nodeclass_per_karpenter_pool(stack):
    cfg = _config(stack.stack)
    pools = cfg.pools_by("karpenter")
    assert set(_node_pools(stack)) == set(_node_classes(stack)) == set(pools) == {"cpu", "training", "inference"}
    for name, spec in _node_pools(stack).items():
        assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                            "name": name}
        assert _requirement(spec, "node.kubernetes.io/instance-type")["values"] == pools[name].types
        assert _requirement(spec, "karpenter.sh/capacity-type")["values"] == pools[name].capacity_types


def test_cpu_pool_draws_on_the_configured_families(stack):
    types_ = _requirement(_node_pools(stack)["cpu"], "node.kubernetes.io/instance-type")["values"]
    assert {t.split(".")[0] for t in types_} == {"c6i", "c7i", "m6i"}


def test_gpu_pools_are_tainted_and_cpu_pool_is_not(stack):
    pools = _node_pools(stack)
    for name in ("training", "inference"):
        assert pools[name]["template"]["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}], name
        assert pools[name]["template"]["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert "taints" not in pools["cpu"]["template"]["spec"]


def test_every_nodepool_is_bounded_in_cpu_memory_and_gpus(stack):
    cfg = _config(stack.stack)
    for name, spec in _node_pools(stack).items():
        limits = cfg.node_pools[name].effective_limits
        assert spec["limits"] == {"cpu": str(limits.cpu), "memory": f"{limits.memory_gib}Gi",
                                  "nvidia.com/gpu": str(limits.gpus),
                                  **({"nodes": str(limits.nodes)} if limits.nodes else {})}, name
    assert _node_pools(stack)["training"]["limits"]["nvidia.com/gpu"] == str(8 * cfg.node_pools["training"].max_size)


def test_training_is_only_consolidated_when_empty(stack):
    disruption = _node_pools(stack)["training"]["disruption"]
    assert disruption["consolidationPolicy"] == "WhenEmpty", "running training jobs must not be repacked"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_node_class_uses_the_configured_ami_alias(stack_name, dev, prod):
    recording = {"dev": dev, "prod": prod}[stack_name]
    alias = _config(stack_name).karpenter.ami_alias
    assert set(_node_classes(recording)) == set(_config(stack_name).pools_by("karpenter"))
    for name, spec in _node_classes(recording).items():
        assert spec["amiSelectorTerms"] == [{"alias": alias}], name


def test_node_classes_launch_locked_down_nodes(stack):
    cfg = _config(stack.stack)
    for name, spec in _node_classes(stack).items():
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["associatePublicIPAddress"] is False
        (volume,) = spec["blockDeviceMappings"]
        assert volume["ebs"] == {"volumeSize": f"{cfg.node_pools[name].disk_size_gib}Gi", "volumeType": "gp3",
                                 "encrypted": True, "deleteOnTermination": True}
        assert spec["tags"]["cost-center"] == cfg.tags.cost_center


def test_node_classes_find_subnets_and_security_group_by_the_network_discovery_tag(stack):
    cluster = f"ml-platform-{stack.stack}"
    tagged_subnets = [s for s in stack.of_type("aws:ec2/subnet:Subnet")
                      if s.inputs["tags"].get("karpenter.sh/discovery") == cluster]
    assert tagged_subnets and all("-private-" in s.name for s in tagged_subnets)
    (sg_tag,) = stack.of_type("aws:ec2/tag:Tag")
    eks = stack.of_type("aws:eks/cluster:Cluster")[0]
    assert sg_tag.inputs == {"resourceId": eks.state["vpcConfig"]["clusterSecurityGroupId"],
                             "key": "karpenter.sh/discovery", "value": cluster}
    for spec in _node_classes(stack).values():
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]
        assert spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]


def test_node_role_is_granted_by_an_ec2_linux_access_entry(stack):
    role = stack.named("aws:iam/role:Role", "karpenter-node")
    (entry,) = [e for e in stack.of_type("aws:eks/accessEntry:AccessEntry") if e.inputs["type"] == "EC2_LINUX"]
    assert entry.inputs["principalArn"] == role.state["arn"]
    assert {spec["role"] for spec in _node_classes(stack).values()} == {role.state["name"]}


def test_prod_training_gets_efa_in_a_cluster_placement_group(prod, dev):
    (group,) = prod.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert group.inputs["strategy"] == "cluster"
    training = _node_classes(prod)["training"]
    assert training["placementGroupSelector"] == {"name": group.state["name"]}
    zone_id = _config("prod").node_pools["training"].efa_zone_id
    assert _requirement(_node_pools(prod)["training"], "topology.k8s.aws/zone-id")["values"] == [zone_id]
    keys = {r["key"] for r in _node_pools(prod)["training"]["template"]["spec"]["requirements"]}
    assert "topology.kubernetes.io/zone" not in keys, "zone names differ per account: never pin by name"
    assert not dev.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert "placementGroupSelector" not in _node_classes(dev)["training"]


def test_interruption_queue_is_wired_end_to_end(stack):
    """The commonest Karpenter install failure: a queue the controller cannot find or read."""
    (queue,) = stack.of_type("aws:sqs/queue:Queue")
    assert queue.inputs["messageRetentionSeconds"] == 300 and queue.inputs["sqsManagedSseEnabled"] is True
    values = _release(stack, "karpenter").inputs["values"]
    assert values["settings"]["interruptionQueue"] == queue.state["name"], "the chart takes the queue name"
    assert not values["settings"]["interruptionQueue"].startswith(("arn:", "https:"))
    controller = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "karpenter-controller-interruption")
                            .inputs["policy"])
    (statement,) = controller["Statement"]
    assert statement["Resource"] == queue.state["arn"] and statement["Action"] == INTERRUPTION_QUEUE_ACTIONS
    policy = json.loads(stack.of_type("aws:sqs/queuePolicy:QueuePolicy")[0].inputs["policy"])
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"][0]
    assert "events.amazonaws.com" in allow["Principal"]["Service"] and allow["Resource"] == queue.state["arn"]


def test_every_interruption_event_reaches_the_queue(stack):
    (queue,) = stack.of_type("aws:sqs/queue:Queue")
    rules = {r.name: json.loads(r.inputs["eventPattern"]) for r in stack.of_type("aws:cloudwatch/eventRule:EventRule")}
    targets = {t.name: t for t in stack.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    assert set(rules) == {f"karpenter-{k}" for k in INTERRUPTION_EVENTS}
    for name, pattern in rules.items():
        source, detail_type = INTERRUPTION_EVENTS[name.removeprefix("karpenter-")]
        assert pattern == {"source": [source], "detail-type": [detail_type]}
        rule = stack.named("aws:cloudwatch/eventRule:EventRule", name)
        assert targets[name].inputs["rule"] == rule.state["name"] and targets[name].inputs["arn"] == queue.state["arn"]


def _statements(stack):
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.name.startswith("karpenter-controller-"):
            yield from json.loads(policy.inputs["policy"])["Statement"]


def test_controller_policy_is_scoped(stack):
    cluster = f"ml-platform-{stack.stack}"
    statements = list(_statements(stack))
    assert len(statements) == 17
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(not a.endswith("*") for a in actions), statement["Sid"]
        writes = [a for a in actions if a.split(":")[1].startswith(("Run", "Create", "Terminate", "Delete"))]
        if writes and statement["Sid"] != "AllowScopedEC2InstanceAccessActions":
            scope = json.dumps([statement.get("Condition"), statement["Resource"]])
            assert cluster in scope, f"{statement['Sid']} is not scoped to {cluster}"
        if statement["Resource"] == "*":
            assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions), statement["Sid"]


def test_controller_role_trusts_only_its_service_account(stack):
    role = stack.named("aws:iam/role:Role", "karpenter-controller")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:RequestTag/eks-cluster-name": f"ml-platform-{stack.stack}",
                                                  "aws:RequestTag/kubernetes-namespace": "kube-system",
                                                  "aws:RequestTag/kubernetes-service-account": "karpenter"}
    (association,) = [a for a in stack.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                      if a.inputs["roleArn"] == role.state["arn"]]
    values = _release(stack, "karpenter").inputs["values"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        _release(stack, "karpenter").inputs["namespace"], values["serviceAccount"]["name"])


def test_controller_runs_on_the_system_pool_with_resources(stack):
    release = _release(stack, "karpenter").inputs
    assert release["version"] == "1.14.1" and release["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release["skipCrds"] is True, "CRDs come from the karpenter-crd release, so upgrades update them"
    values = release["values"]
    assert values["nodeSelector"] == {"ml-platform/pool": "system"}
    # One CPU and 1 GiB, requests equal to limits (Guaranteed), as Karpenter's docs size it.
    assert values["controller"]["resources"] == {"requests": {"cpu": "1000m", "memory": "1024Mi"},
                                                 "limits": {"cpu": "1000m", "memory": "1024Mi"}}
    assert values["replicas"] == {"dev": 1, "prod": 2}[stack.stack]
    assert values["settings"]["clusterName"] == f"ml-platform-{stack.stack}"


def test_custom_resources_wait_for_the_controller(stack):
    controller = _release(stack, "karpenter")
    crds = _release(stack, "karpenter-crd")
    assert crds.inputs["version"] == controller.inputs["version"]
    assert crds.urn in controller.dependencies
    for resource in [*stack.of_type(NODEPOOL), *stack.of_type(NODECLASS)]:
        assert controller.urn in resource.dependencies, resource.name


def test_every_pool_drains_within_its_grace_period_and_pulumi_outwaits_it(stack):
    cfg = _config(stack.stack)
    pools = {p.inputs["metadata"]["name"]: p for p in stack.of_type("kubernetes:karpenter.sh/v1:NodePool")}
    classes = {c.inputs["metadata"]["name"]: c for c in stack.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")}
    expected = {"cpu": "30m", "training": "2h", "inference": "15m"}
    for name, pool in cfg.pools_by("karpenter").items():
        grace = pools[name].inputs["spec"]["template"]["spec"]["terminationGracePeriod"]
        assert grace == expected[pool.role], f"{name}: the role default"
        for resource in (pools[name], classes[name]):
            assert resource.delete_timeout is not None, f"{resource.name} has no delete timeout"
            assert duration_seconds(resource.delete_timeout) > duration_seconds(grace), (
                f"{resource.name}: deleting waits up to {grace} for the drain; the timeout must be longer")


def _quantity(value: str) -> float:
    return float(value.removesuffix("Gi"))


def test_max_size_nodes_fit_within_every_limit_karpenter_counts(stack):
    """Karpenter counts usage from node capacity: a time-sliced g5.xlarge advertises 4 nvidia.com/gpu."""
    cfg = _config(stack.stack)
    for name, spec in _node_pools(stack).items():
        pool = cfg.node_pools[name]
        if pool.limits is not None:
            continue  # explicit limits cap the pool below maxSize on purpose
        types_ = _requirement(spec, "node.kubernetes.io/instance-type")["values"]
        largest = {"cpu": max(INSTANCES[t].vcpu for t in types_),
                   "memory": max(INSTANCES[t].memory_gib for t in types_),
                   "nvidia.com/gpu": max(INSTANCES[t].gpus * (pool.time_slicing_replicas or 1) for t in types_),
                   "nodes": 1}
        for key, per_node in largest.items():
            limit = spec["limits"].get(key)
            if limit is not None:
                assert pool.max_size * per_node <= _quantity(limit), (
                    f"{stack.stack}/{name}: {pool.max_size} nodes need {key} {pool.max_size * per_node}, limit {limit}")


@pytest.mark.parametrize(("selector", "pool"), [
    ({"workload-type": "training", "accelerator": "nvidia-a100"}, "training"),
    ({"workload-type": "inference", "accelerator": "nvidia-a10g"}, "inference"),
    ({"workload-type": "training", "accelerator": "cpu"}, "cpu"),
])
def test_existing_manifests_select_pools_by_their_plain_labels(stack, selector, pool):
    """A Job written for `workload-type`/`accelerator` labels schedules unchanged, on exactly one pool."""
    matching = [name for name, spec in _node_pools(stack).items()
                if selector.items() <= spec["template"]["metadata"]["labels"].items()]
    assert matching == [pool], f"{stack.stack}: {selector} selects {matching}"
