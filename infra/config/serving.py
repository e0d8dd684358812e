"""Serving config: `ml-platform:serving` — vLLM model servers, keyed by model name.

A user writes the model id and the pool; everything else has a default. The
architecture facts the memory fit needs come from catalog/models.py for
known models, or from `facts` here for any other.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from catalog.model import Model
from infra.config.base import cron, dns_labels
from infra.config.tenancy import QUANTITY

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Only a pinned release: a tag that moves (latest, nightly) changes the engine under a running model.
VLLM_IMAGE = re.compile(r"^(docker\.io/)?vllm/vllm-openai:v\d+\.\d+\.\d+$")
# vLLM 0.33.0 is the newest on PyPI (2026-11-02); v0.31.0 is the newest image tag whose existence is on
# record (a registry digest read 2026-10-07). Flags and metrics used here exist in both.
DEFAULT_IMAGE = "vllm/vllm-openai:v0.31.0"


class Replicas(Model):
    min: int = Field(1, ge=0, le=100, description="Fewest replicas; 0 scales to zero outside a wake window.")
    max: int = Field(1, ge=1, le=100, description="Most replicas KEDA may run.")

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.max < max(self.min, 1):
            raise ValueError(f"max ({self.max}) must be >= min ({self.min}) and at least 1")
        return self


class Facts(Model):
    """Architecture of a model catalog/models.py does not know (its config.json and model card)."""

    parameters_b: float = Field(gt=0, description="Parameters, billions (the model card).")
    layers: int = Field(gt=0, description="num_hidden_layers.")
    attention_heads: int = Field(gt=0, description="num_attention_heads.")
    kv_heads: int = Field(gt=0, description="num_key_value_heads.")
    head_dim: int = Field(gt=0, description="head_dim (hidden_size / num_attention_heads when absent).")
    max_context: int = Field(gt=0, description="max_position_embeddings.")


class Wake(Model):
    """When a model scaled to zero runs: a cron window (KEDA cron trigger)."""

    start: str = Field(description="Cron (in `timezone`) at which one replica starts, e.g. '0 7 * * 1-5'.")
    end: str = Field(description="Cron at which the window ends, e.g. '0 20 * * 1-5'.")
    timezone: str = Field("UTC", description="IANA time zone of start and end.")

    @field_validator("start", "end")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron(value)


class Autoscaling(Model):
    queue_per_replica: int = Field(5, ge=1, description="Waiting requests per replica KEDA aims for "
                                   "(vllm:num_requests_waiting).")
    activation_queue: int = Field(1, ge=0, description="Waiting requests that wake a model from zero.")
    cooldown_seconds: int = Field(1800, ge=300, description="Idle time before scaling to zero: above a GPU "
                                  "cold start (node, image, model load).")
    wake: Wake | None = Field(None, description="Required with replicas.min 0: when the model runs.")


class Slo(Model):
    p95_latency_seconds: float = Field(30, gt=0, description="p95 end-to-end latency above which it alerts.")
    p95_ttft_seconds: float = Field(2, gt=0, description="p95 time to first token above which it alerts.")


class ServedModel(Model):
    model: str = Field(description="Model id on the hub, e.g. Qwen/Qwen2.5-1.5B-Instruct.")
    pool: str = Field(description="The inference pool (nodePools) it runs on.")
    served_name: str | None = Field(None, description="Name clients ask for; default: the config key.")
    image: str = Field(DEFAULT_IMAGE, description="Pinned vllm/vllm-openai:vX.Y.Z image.")
    gpus: int = Field(1, ge=1, le=8, description="GPUs per replica (= tensor parallel size).")
    max_model_len: int = Field(4096, ge=128, description="Longest sequence (prompt + output) it serves.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=0.95, description="Share of GPU memory vLLM takes; "
                                          "on a time-sliced pool at most 1 / slices.")
    dtype: Literal["auto", "bfloat16", "float16"] = Field("auto", description="Weights dtype (auto: the model's).")
    quantization: Literal["awq", "gptq", "fp8"] | None = Field(None, description="Quantized weights.")
    replicas: Replicas = Field(default_factory=Replicas, description="KEDA's range.")
    cpu: str = Field("2", description="CPU request (and no limit).")
    memory: str = Field("10Gi", description="Memory request and limit.")
    hub_token_secret: str | None = Field(None, description="ExternalSecret (namespace ml-inference) with key "
                                         "`token`, for gated models; none for open ones.")
    api_key_secret: str | None = Field(None, description="ExternalSecret with key `api-key` that clients "
                                       "must send; none: the endpoint is open inside the cluster.")
    cache_gib: int = Field(40, alias="cacheGiB", ge=1, description="Node-local model cache per replica (emptyDir on the root "
                           "volume), GiB.")
    extra_args: list[str] = Field(default_factory=list, description="More vLLM engine flags, e.g. --enforce-eager.")
    clients: list[str] = Field(default_factory=list, description="Team namespaces that may call it (its own "
                               "always may).")
    facts: Facts | None = Field(None, description="Architecture, for a model catalog/models.py does not know.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="KEDA scaling on queue depth.")
    slo: Slo = Field(default_factory=Slo, description="Latency objectives for its alerts.")

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not MODEL_ID.match(value):
            raise ValueError(f"{value!r} is not a model id like Qwen/Qwen2.5-1.5B-Instruct (<org>/<name>)")
        return value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not VLLM_IMAGE.match(value):
            raise ValueError(f"{value!r} is not a pinned vLLM release like {DEFAULT_IMAGE} (latest and nightly "
                             f"tags move under a running model)")
        return value

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity like 2, 500m or 10Gi")
        return value

    @field_validator("extra_args")
    @classmethod
    def _flags(cls, args: list[str]) -> list[str]:
        owned = ("--model", "--served-model-name", "--tensor-parallel-size", "--max-model-len",
                 "--gpu-memory-utilization", "--dtype", "--quantization", "--port", "--api-key", "--host")
        for arg in args:
            if arg.split("=", 1)[0] in owned:
                raise ValueError(f"{arg.split('=', 1)[0]} is set from this model's own keys; drop it from extraArgs")
        return args

    @model_validator(mode="after")
    def _wake(self) -> ServedModel:
        if self.replicas.min == 0 and self.autoscaling.wake is None:
            raise ValueError("replicas.min 0 needs autoscaling.wake (a cron window): at zero there is no vLLM "
                             "metric to wake on and the Service refuses requests")
        return self


class Serving(Model):
    """vLLM model servers (`ml-platform:serving`)."""

    namespace: str = Field("ml-inference", description="Team namespace the servers run in.")
    models: dict[str, ServedModel] = Field(default_factory=dict, description="Served models by name.")

    @field_validator("models")
    @classmethod
    def _names(cls, models: dict[str, ServedModel]) -> dict[str, ServedModel]:
        dns_labels(models, "model")
        return models
