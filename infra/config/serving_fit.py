"""Does each served model fit its pool? Checked before anything is created: one line naming the key.

The one instance table decides (catalog/instances.py); what a node gives pods is catalog/allocatable.py;
what the stack places on every GPU node is catalog/footprints.py; GPU memory is catalog/fit.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic.alias_generators import to_camel

from catalog import footprints
from catalog.fit import BYTES_PER_PARAMETER, model_memory_gib, pool_fit_problem, smallest
from catalog.instances import INSTANCES
from catalog.models import KNOWN, ModelFacts
from catalog.pools import NodePool
from infra.config.secrets import ExternalSecret
from infra.config.serving import ServedModel, Serving

ROOT_VOLUME_RESERVE_GIB = 30  # images, logs and the OS share the root volume with the model cache
SECRET_KEYS = {"hub_token_secret": "token", "api_key_secret": "api-key"}


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def mebibytes(quantity: str) -> int:
    number, unit = re.match(r"^([0-9.]+)([A-Za-z]*)$", quantity).groups()
    return int(float(number) * {"": 2**-20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}[unit])


def facts_of(model: ServedModel) -> ModelFacts | None:
    if model.facts is not None:
        f = model.facts
        return ModelFacts(f.parameters_b, f.layers, f.attention_heads, f.kv_heads, f.head_dim, f.max_context)
    return KNOWN.get(model.model)


def model_problem(name: str, model: ServedModel, pool: NodePool, move_volume_data: bool) -> str | None:
    """The first reason `model` cannot run on `pool`, as `<key>: <why, with the numbers>`."""
    key = f"serving.models.{name}"
    facts = facts_of(model)
    if facts is None:
        return (f"{key}.facts: {model.model} is not in catalog/models.py; give its facts (parametersB, layers, "
                f"attentionHeads, kvHeads, headDim, maxContext from its config.json)")
    if model.max_model_len > facts.max_context:
        return f"{key}.maxModelLen: {model.max_model_len} exceeds {model.model}'s context of {facts.max_context}"
    node_type = smallest(pool.types)
    spec = INSTANCES[node_type]
    if model.gpus > spec.gpus:
        return (f"{key}.gpus: {model.gpus} GPUs per replica, but a {node_type} (the pool's smallest type) has "
                f"{spec.gpus}")
    if facts.attention_heads % model.gpus:
        return (f"{key}.gpus: tensor parallel size {model.gpus} does not divide {model.model}'s "
                f"{facts.attention_heads} attention heads")
    slices = pool.slices
    if slices > 1 and (model.gpus > 1 or model.gpu_memory_utilization > 1 / slices + 1e-9):
        return (f"{key}.gpuMemoryUtilization: pool {model.pool} shares each GPU {slices} ways, so a replica "
                f"gets one GPU and at most {1 / slices:.2f} of its memory (got {model.gpus} GPUs at "
                f"{model.gpu_memory_utilization}): {slices} vLLM pods at 0.9 on one GPU all run out of memory")
    weight_bytes = BYTES_PER_PARAMETER[model.quantization or ("bfloat16" if model.dtype == "auto" else model.dtype)]
    weights, kv, overhead = model_memory_gib(facts.parameters_b, facts.layers, facts.kv_heads, facts.head_dim,
                                             weight_bytes, 2.0, model.max_model_len, model.gpus)
    budget = spec.gpu_memory_gib * model.gpus * model.gpu_memory_utilization
    if weights + kv + overhead > budget:
        return (f"{key}: {model.model} needs {weights + kv + overhead:.1f} GiB of GPU memory (weights "
                f"{weights:.1f} + KV cache {kv:.1f} for {model.max_model_len} tokens + overhead {overhead:.1f}), "
                f"but {model.gpus} x {spec.gpu_model} ({spec.gpu_memory_gib} GiB) at gpuMemoryUtilization "
                f"{model.gpu_memory_utilization} gives {budget:.1f} GiB: use more GPUs per replica (a type with "
                f"more GPUs, e.g. g5.12xlarge), quantization, or a shorter maxModelLen")
    pod = footprints.Placed(name, footprints.Pod(millicores(model.cpu), mebibytes(model.memory)), 1)
    problem = pool_fit_problem([node_type], 1, [*footprints.every_node(move_volume_data), pod])
    if problem:
        return f"{key}.cpu/memory: {problem}"
    room = pool.disk_size_gib - ROOT_VOLUME_RESERVE_GIB
    if model.cache_gib > room:
        return (f"{key}.cacheGiB: {model.cache_gib} GiB does not fit pool {model.pool}'s {pool.disk_size_gib} GiB "
                f"root volume less {ROOT_VOLUME_RESERVE_GIB} GiB for images and logs")
    return None


def serving_problem(serving: Serving, pools: Mapping[str, NodePool], team_namespaces: Sequence[str],
                    secrets: Mapping[str, ExternalSecret], move_volume_data: bool) -> str | None:
    if serving.models and serving.namespace not in team_namespaces:
        return f"serving.namespace: {serving.namespace!r} is no team namespace ({', '.join(team_namespaces)})"
    inference = {n: p for n, p in pools.items() if p.role == "inference"}
    demand: dict[str, list[tuple[str, int]]] = {}
    for name, model in serving.models.items():
        pool = inference.get(model.pool)
        if pool is None:
            return (f"serving.models.{name}.pool: {model.pool!r} is no inference pool (inference pools: "
                    f"{', '.join(inference) or 'none'})")
        problem = model_problem(name, model, pool, move_volume_data)
        if problem:
            return problem
        for client in model.clients:
            if client not in team_namespaces:
                return (f"serving.models.{name}.clients: {client!r} is no team namespace "
                        f"({', '.join(team_namespaces)})")
        for field, wanted in SECRET_KEYS.items():
            secret_name = getattr(model, field)
            secret = secrets.get(secret_name) if secret_name else None
            where = f"serving.models.{name}.{to_camel(field)}"
            if secret_name and (secret is None or secret.namespace != serving.namespace):
                return (f"{where}: {secret_name!r} is no ExternalSecret in namespace {serving.namespace} "
                        f"(secrets.externalSecrets)")
            if secret is not None and wanted not in secret.properties:
                return f"{where}: ExternalSecret {secret_name} has no key {wanted!r} (it has {', '.join(secret.properties)})"
        # Every replica it may run, and one more while a rollout surges.
        demand.setdefault(model.pool, []).append((name, (model.replicas.max + 1) * model.gpus))
    for pool_name, models in demand.items():
        need, capacity = sum(g for _, g in models), inference[pool_name].gpu_capacity
        if need > capacity:
            detail = ", ".join(f"{n} {g}" for n, g in models)
            return (f"serving.models: pool {pool_name} holds at most {capacity} GPUs (nodes x GPUs x slices), and its "
                    f"models may need {need} at their max replicas plus one rollout surge each ({detail}): lower "
                    f"replicas.max or raise the pool's maxSize")
    return None
