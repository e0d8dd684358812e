"""Architecture of models the platform knows, for the GPU memory fit (config.json of each, and its card).

Sources (HF config.json is not reachable from here; each figure from an upstream or copied source):
- Llama-3.1-8B/70B-Instruct: meta-llama/llama-models @8c88b8c models/sku_list.py:484-511 (dim, layers,
  heads, kv heads), models/llama3_1/MODEL_CARD.md (8B/70B, 128k context).
- Qwen2.5-0.5B/1.5B/7B-Instruct: copies of each config.json and model card in public repositories
  (read 2026-12-01; parameter counts from the cards: 0.49B, 1.54B, 7.61B).
- Mistral-7B-Instruct-v0.3: third-party config tables (7.25B parameters, 32k context).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    parameters_b: float
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context: int


KNOWN: dict[str, ModelFacts] = {
    "meta-llama/Llama-3.1-8B-Instruct": ModelFacts(8.03, 32, 32, 8, 128, 131072),
    "meta-llama/Llama-3.1-70B-Instruct": ModelFacts(70.6, 80, 64, 8, 128, 131072),
    "Qwen/Qwen2.5-0.5B-Instruct": ModelFacts(0.49, 24, 14, 2, 64, 32768),
    "Qwen/Qwen2.5-1.5B-Instruct": ModelFacts(1.54, 28, 12, 2, 128, 32768),
    "Qwen/Qwen2.5-7B-Instruct": ModelFacts(7.61, 28, 28, 4, 128, 32768),
    "mistralai/Mistral-7B-Instruct-v0.3": ModelFacts(7.25, 32, 32, 8, 128, 32768),
}
