"""Does what the stack schedules on a pool fit it? One answer for the system pool and, later, for serving.

DaemonSet pods run on every node; the other pods share the pool's nodes. The numbers are what the
scheduler sees: requests against allocatable (catalog/allocatable.py) of the pool's smallest type.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.allocatable import allocatable
from catalog.footprints import Placed
from catalog.instances import INSTANCES


def smallest(types: Sequence[str]) -> str:
    return min(types, key=lambda t: (INSTANCES[t].vcpu, INSTANCES[t].memory_gib))


def pool_fit_problem(instance_types: Sequence[str], nodes: int, placed: Sequence[Placed]) -> str | None:
    """None when `placed` fits `nodes` nodes of the smallest of `instance_types`, else the numbers why not."""
    instance_type = smallest(instance_types)
    node = allocatable(instance_type)
    daemons = [p for p in placed if p.daemonset]
    shared = [p for p in placed if not p.daemonset]
    per_node_cpu = sum(p.pod.cpu_millicores for p in daemons)
    per_node_mem = sum(p.pod.memory_mib for p in daemons)
    cpu = per_node_cpu * nodes + sum(p.pod.cpu_millicores * p.replicas for p in shared)
    mem = per_node_mem * nodes + sum(p.pod.memory_mib * p.replicas for p in shared)
    biggest = max(shared, key=lambda p: (p.pod.cpu_millicores, p.pod.memory_mib), default=None)
    pods = len(daemons) * nodes + sum(p.replicas for p in shared)
    if biggest and (per_node_cpu + biggest.pod.cpu_millicores > node.cpu_millicores
                    or per_node_mem + biggest.pod.memory_mib > node.memory_mib):
        return (f"one {instance_type} gives pods {node.cpu_millicores}m CPU / {node.memory_mib}Mi; its DaemonSets take "
                f"{per_node_cpu}m / {per_node_mem}Mi and {biggest.name} needs {biggest.pod.cpu_millicores}m / "
                f"{biggest.pod.memory_mib}Mi more")
    if cpu > node.cpu_millicores * nodes or mem > node.memory_mib * nodes or pods > node.pods * nodes:
        heaviest = sorted(placed, key=lambda p: -p.pod.cpu_millicores * (nodes if p.daemonset else p.replicas))[:4]
        detail = ", ".join(f"{p.name} {p.replicas}x{p.pod.cpu_millicores}m/{p.pod.memory_mib}Mi"
                           + (" per node" if p.daemonset else "") for p in heaviest)
        return (f"{nodes} x {instance_type} give pods {node.cpu_millicores * nodes}m CPU / "
                f"{node.memory_mib * nodes}Mi / {node.pods * nodes} pods, and the stack places {cpu}m / {mem}Mi / "
                f"{pods} pods there (largest: {detail})")
    return None


# What vLLM needs besides weights and KV cache on each GPU: the CUDA context, activations of the
# profiling pass, CUDA graphs. An assumption (1.5 GiB), not an upstream figure: docs/serving.md.
OVERHEAD_GIB_PER_GPU = 1.5
BYTES_PER_PARAMETER = {"bfloat16": 2.0, "float16": 2.0, "float32": 4.0, "awq": 0.5, "gptq": 0.5, "fp8": 1.0}


def model_memory_gib(parameters_b: float, layers: int, kv_heads: int, head_dim: int, weight_bytes: float,
                     kv_bytes: float, max_model_len: int, gpus: int) -> tuple[float, float, float]:
    """Weights, KV cache for one sequence of max_model_len, and overhead, in GiB (all GPUs together)."""
    weights = parameters_b * 1e9 * weight_bytes / 2**30
    kv_per_token = 2 * layers * kv_heads * head_dim * kv_bytes
    return weights, kv_per_token * max_model_len / 2**30, OVERHEAD_GIB_PER_GPU * gpus
