"""Performance model: operating points of one replica from chip and model specs.

Nobody has measured every model on every chip, so where no measured profile row exists the optimizer
uses the rows this module derives. The model is a roofline with named, fitted efficiency factors
(placement/efficiency.py; the table with sources is benchmarks/ESTIMATOR.md):

* memory: weights (all experts resident) + KV cache + runtime overhead must fit in the replica's usable
  memory; that fixes the chip counts worth considering, the longest context and the largest batch; the
  batch is also capped by what serving engines run (max_batch sequences, max_num_tokens per step);
* layouts: tensor parallel (a model too big for one scale-up domain spans whole domains as a pipeline)
  and, for mixture-of-experts models, data-parallel attention + expert parallelism ("DEP": every rank
  keeps the attention weights and its own sequences' KV, experts are spread over the ranks and tokens
  travel by all-to-all, over the scale-out network when the ranks span domains);
* decode step = max(bytes / achieved bandwidth, FLOPs / achieved peak) + collectives + fixed latency,
  where routed-expert reads run at a fraction of the dense bandwidth and expert GEMMs at an efficiency
  that grows with tokens per expert (batch x top-k / experts touched); fixed latency = per layer +
  per MoE layer + a per-step overhead that does not scale with layers;
* prefill (2 * active params * tokens + causal attention) is charged against the same replica time as
  decode; TTFT at an operating point counts the prompt's chunks interleaved with the running batch's
  decode steps and the wait behind other prompts' prefill work (see `ttft_under_load`);
* speculative decoding (model.speculative: MTP heads or a draft model) verifies draft_tokens + 1 tokens
  per step and keeps the expected accepted run (1 - a^(n+1)) / (1 - a);
* SRAM / wafer-scale chips are sized (chips, context that fits) but get no speed: a bandwidth roofline
  overshoots them by orders of magnitude, so their speed must come from measured rows.

Every estimated row carries low/high bands from the calibration residuals (`band_factors`). Not
modelled: prefix caching, disaggregated prefill, KV offload; measured rows capture them. Every function
is pure; the sweep over lengths x batch sizes is numpy-vectorized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from placement.efficiency import HOPPER, Efficiency, Preset, efficiency_for
from placement.errors import InputError, Problem
from placement.scenario import PROFILE_COLUMNS, Accelerator, Model

GB = 1e9
TB = 1e12
DEFAULT_EFFICIENCY = HOPPER

SRAM_NOTE = "sram: speed must come from measured rows"


# --------------------------------------------------------------------------------------------------
# Missing inputs


def _missing(owner: str, owner_id: str, field: str, fix: str) -> Problem:
    return Problem("estimator", f"{owner}.{owner_id}.{field}", f"missing; {fix}")


def _require_model(model: Model) -> None:
    """The estimator needs weights size, precision and KV size; say which is missing and how to fix it."""
    problems = []
    if model.total_params_b is None:
        problems.append(_missing("models", model.id, "total_params_b", "give total_params_b or measured profile rows"))
    if model.weight_bits is None:
        problems.append(
            _missing("models", model.id, "weight_bits", "give weight_bits (16 BF16, 8 FP8, ~4.25 MXFP4) or measured profile rows")
        )
    if _moe_shape(model) is not None and model.active_params_b is None:
        problems.append(
            _missing("models", model.id, "active_params_b", "a mixture-of-experts model needs active_params_b, or measured profile rows")
        )
    if _kv_shape(model) is None and model.kv_bytes_per_token is None:
        problems.append(
            _missing(
                "models",
                model.id,
                "kv_bytes_per_token",
                "give kv_bytes_per_token or the architecture fields (num_hidden_layers, num_key_value_heads, head_dim), "
                "or measured profile rows",
            )
        )
    if problems:
        raise InputError(problems)


def _require_accelerator(accel: Accelerator, model: Model, chips: list[int]) -> None:
    problems = []
    if accel.memory_gb is None:
        problems.append(_missing("accelerators", accel.id, "memory_gb", "give memory_gb or measured profile rows"))
    if accel.memory_kind == "hbm":
        if accel.memory_bandwidth_tbps is None:
            problems.append(
                _missing("accelerators", accel.id, "memory_bandwidth_tbps", "give memory_bandwidth_tbps or measured profile rows")
            )
        if model.weight_bits is not None and _peak_tflops(model, accel) is None:
            wanted = "/".join(_precision_chain(_compute_bits(model)))
            problems.append(
                _missing("accelerators", accel.id, "dense_tflops", f"give dense_tflops for one of {wanted}, or measured profile rows")
            )
        if accel.scaleup_bandwidth_gbps is None and any(c > 1 for c in chips):
            problems.append(
                _missing(
                    "accelerators",
                    accel.id,
                    "scaleup_bandwidth_gbps",
                    f"a replica of {max(chips)} chips needs scaleup_bandwidth_gbps, or measured profile rows",
                )
            )
    if problems:
        raise InputError(problems)


# --------------------------------------------------------------------------------------------------
# Architecture helpers


def _arch(model: Model) -> dict[str, Any]:
    return model.architecture or {}


def _first(arch: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = arch.get(name)
        if value is not None:
            return value
    return None


def _kv_bits(model: Model) -> float:
    """KV cache precision; BF16 unless the architecture says kv_bits / kv_cache_bits (FP8 KV = 8)."""
    return float(_first(_arch(model), "kv_bits", "kv_cache_bits") or 16)


def _head_dim(arch: dict[str, Any]) -> float | None:
    if arch.get("head_dim"):
        return float(arch["head_dim"])
    if arch.get("hidden_size") and arch.get("num_attention_heads"):
        return arch["hidden_size"] / arch["num_attention_heads"]
    return None


def _kv_shape(model: Model) -> tuple[float, int, int, int] | None:
    """(KV bytes per token per attention layer, full-attention layers, sliding layers, window) or None.

    GQA stores K and V per KV head; MLA (kv_lora_rank present) stores one compressed latent plus the
    decoupled RoPE key, shared by all heads: no factor 2.
    """
    arch = _arch(model)
    layers = arch.get("num_hidden_layers")
    if not layers:
        return None
    bytes_per_elem = _kv_bits(model) / 8
    if arch.get("kv_lora_rank"):
        per_layer = (arch["kv_lora_rank"] + (arch.get("qk_rope_head_dim") or 0)) * bytes_per_elem
    else:
        kv_heads = _first(arch, "num_key_value_heads", "num_attention_heads")
        head_dim = _head_dim(arch)
        if not kv_heads or not head_dim:
            return None
        per_layer = 2 * kv_heads * head_dim * bytes_per_elem
    full, sliding, window = _layer_split(arch)
    return float(per_layer), full, sliding, window


def kv_replication(model: Model, tp: int) -> float:
    """Copies of each token's KV a tensor-parallel group of `tp` chips holds.

    MLA's latent is shared by every head, so every rank keeps all of it: tp copies. GQA shards KV
    heads over ranks until there are fewer KV heads than ranks; past that, heads are replicated:
    tp / kv_heads copies. Memory for KV and KV bytes read per decode step both scale by this.
    """
    arch = _arch(model)
    if arch.get("kv_lora_rank"):
        return float(tp)
    kv_heads = _first(arch, "num_key_value_heads", "num_attention_heads")
    return max(1.0, tp / kv_heads) if kv_heads else 1.0


def mla_attention_bytes(model: Model) -> float:
    """Bytes of an MLA model's attention weights (all layers): what data-parallel attention copies to
    every rank. Per layer: q (through q_lora_rank when present), the latent down-projection, the
    up-projections of k_nope and v from the latent, and the output projection."""
    arch = _arch(model)
    hidden, heads, rank = arch["hidden_size"], arch["num_attention_heads"], arch["kv_lora_rank"]
    rope = arch.get("qk_rope_head_dim") or 0
    nope = arch.get("qk_nope_head_dim") or 128
    v = arch.get("v_head_dim") or nope
    q_rank = arch.get("q_lora_rank")
    q = hidden * q_rank + q_rank * heads * (nope + rope) if q_rank else hidden * heads * (nope + rope)
    per_layer = q + hidden * (rank + rope) + rank * heads * (nope + v) + heads * v * hidden
    always_bits, _ = weight_bits_split(model)
    return float(arch["num_hidden_layers"] * per_layer * always_bits / 8)


def _layer_split(arch: dict[str, Any]) -> tuple[int, int, int]:
    """(full-attention layers, sliding-window layers, window). gpt-oss alternates full and 128-token
    sliding layers (layer_types); Gemma gives sliding_window_pattern; Mistral-style configs slide every
    layer; Qwen sets use_sliding_window false, so its sliding_window field means nothing."""
    layers = int(arch["num_hidden_layers"])
    window = arch.get("sliding_window")
    types = arch.get("layer_types")
    if window and isinstance(types, list) and types:
        sliding = sum(1 for t in types if "sliding" in str(t))
        return layers - sliding, sliding, int(window)
    if window and arch.get("sliding_window_pattern"):  # Gemma: one full layer every `pattern`
        full = layers // int(arch["sliding_window_pattern"])
        return full, layers - full, int(window)
    if window and arch.get("use_sliding_window", True) and not types:
        return 0, layers, int(window)
    return layers, 0, 0


def kv_bytes_per_token(model: Model, context_tokens: int | None = None) -> float:
    """KV cache bytes per token of context, whole model.

    GQA: 2 * layers * kv_heads * head_dim * bytes; MLA: layers * (kv_lora_rank + qk_rope_head_dim) * bytes.
    Sliding-window layers hold only min(context, window) tokens, so with `context_tokens` the result is
    the average over that context; without it, the marginal cost of one more token of a long context
    (full-attention layers only, as in models.csv). Falls back to model.kv_bytes_per_token.
    """
    shape = _kv_shape(model)
    if shape is None:
        if model.kv_bytes_per_token is None:
            _require_model(model)
        return float(model.kv_bytes_per_token)
    per_layer, full, sliding, window = shape
    if context_tokens is None or sliding == 0:
        return per_layer * full
    c = max(int(context_tokens), 1)
    return per_layer * (full + sliding * min(c, window) / c)


def kv_sequence_bytes(model: Model, context_tokens: Any) -> np.ndarray:
    """KV bytes one sequence holds at this context (vectorized over contexts)."""
    c = np.asarray(context_tokens, dtype=float)
    shape = _kv_shape(model)
    if shape is None:
        return kv_bytes_per_token(model) * c
    per_layer, full, sliding, window = shape
    return per_layer * (full * c + sliding * np.minimum(c, window))


def max_context_that_fits(model: Model, kv_budget_bytes: float) -> int:
    """Longest context whose KV fits in the budget (inverse of kv_sequence_bytes)."""
    if kv_budget_bytes <= 0:
        return 0
    shape = _kv_shape(model)
    if shape is None:
        per_token = kv_bytes_per_token(model)
        return int(kv_budget_bytes // per_token) if per_token > 0 else 10**12
    per_layer, full, sliding, window = shape
    slope_short = per_layer * (full + sliding)
    if slope_short * window >= kv_budget_bytes or sliding == 0:
        return int(kv_budget_bytes // slope_short) if slope_short > 0 else 10**12
    if full == 0:
        return 10**12
    return int((kv_budget_bytes - per_layer * sliding * window) // (per_layer * full))


def weight_bytes(model: Model) -> float:
    """Bytes of all weights (every expert resident): total_params * weight_bits / 8 (weight_bits is the
    average over all weights)."""
    _require_model(model)
    return model.total_params_b * 1e9 * model.weight_bits / 8


def weight_bits_split(model: Model) -> tuple[float, float]:
    """(bits of the always-active weights, bits of the routed experts).

    Quantized MoE checkpoints often keep attention and embeddings wider than the experts (gpt-oss: MXFP4
    experts, BF16 rest). Give architecture.non_expert_weight_bits and weight_bits stays the average:
    the expert bits follow from the total. Otherwise both are weight_bits."""
    bits = float(model.weight_bits)
    moe = _moe_shape(model)
    non_expert_bits = _arch(model).get("non_expert_weight_bits")
    if moe is None or not non_expert_bits:
        return bits, bits
    experts, _, moe_layers, per_expert = moe
    routed = moe_layers * experts * per_expert
    rest = max(model.total_params_b * 1e9 - routed, 0.0)
    if routed <= 0:
        return bits, bits
    expert_bits = (model.total_params_b * 1e9 * bits - rest * non_expert_bits) / routed
    return float(non_expert_bits), max(expert_bits, 1.0)


def _active_params(model: Model) -> float:
    return (model.active_params_b or model.total_params_b) * 1e9


def _moe_shape(model: Model) -> tuple[int, int, int, float] | None:
    """(experts E, experts per token k, MoE layers, params per expert per layer) or None for dense.

    Gated MLP experts hold 3 * hidden * intermediate parameters (gate, up, down)."""
    arch = _arch(model)
    experts = _first(arch, "n_routed_experts", "num_local_experts", "num_experts")
    k = _first(arch, "num_experts_per_tok", "experts_per_token", "num_experts_per_token")
    if not experts or experts <= 1 or not k:
        return None
    hidden = arch.get("hidden_size")
    inter = _first(arch, "moe_intermediate_size", "intermediate_size")
    layers = arch.get("num_hidden_layers")
    if not (hidden and inter and layers):
        return None
    moe_layers = int(arch.get("moe_layers") or layers - int(arch.get("first_k_dense_replace") or 0))
    moe_layers -= len(arch.get("mlp_only_layers") or [])
    return int(experts), int(k), moe_layers, 3.0 * hidden * inter


def distinct_experts(experts: int, k: int, tokens: Any) -> np.ndarray:
    """Expected distinct experts a batch of `tokens` touches per layer, routing uniform and independent:
    E * (1 - (1 - k/E)^B). One token touches k; a large batch touches all E."""
    b = np.asarray(tokens, dtype=float)
    return experts * (1.0 - (1.0 - k / experts) ** b)


def weight_bytes_touched(model: Model, tokens: Any) -> np.ndarray:
    """Weight bytes one forward pass over `tokens` tokens reads. Dense: all weights. MoE: the always-
    active part (attention, embeddings, shared experts, dense layers) + the distinct routed experts."""
    t = np.asarray(tokens, dtype=float)
    total = weight_bytes(model)
    moe = _moe_shape(model)
    if moe is None:
        return np.full_like(t, _active_params(model) * model.weight_bits / 8)
    experts, k, moe_layers, per_expert = moe
    always_bits, expert_bits = weight_bits_split(model)
    routed_active = moe_layers * k * per_expert
    always = max(_active_params(model) - routed_active, 0.0)
    routed = moe_layers * per_expert * distinct_experts(experts, k, t)
    return np.minimum((always * always_bits + routed * expert_bits) / 8, total)


def _attention_dims(model: Model, decode: bool = False) -> tuple[float, int, int, int]:
    """(heads * (qk_dim + v_dim), full layers, sliding layers, window) for attention FLOPs.

    MLA decodes in the absorbed form (every head attends over the shared latent: qk = kv_lora_rank +
    rope dim, v = kv_lora_rank), which is ~3x the FLOPs of the prefill form (qk = nope + rope, v = v_head).
    Without architecture: a generic MHA shape of 64 layers sized from the parameter count."""
    arch = _arch(model)
    heads = arch.get("num_attention_heads")
    if arch.get("num_hidden_layers") and heads:
        if arch.get("kv_lora_rank") and decode:
            qk = arch["kv_lora_rank"] + (arch.get("qk_rope_head_dim") or 0)
            v = arch["kv_lora_rank"]
        elif arch.get("kv_lora_rank"):
            qk = (arch.get("qk_nope_head_dim") or 128) + (arch.get("qk_rope_head_dim") or 64)
            v = arch.get("v_head_dim") or 128
        else:
            qk = v = _head_dim(arch) or 128
        full, sliding, window = _layer_split(arch)
        return float(heads * (qk + v)), full, sliding, window
    hidden = _hidden(model)
    return 2.0 * hidden, _layers(model), 0, 0


def _layers(model: Model) -> int:
    return int(_arch(model).get("num_hidden_layers") or 64)


def _hidden(model: Model) -> float:
    """Residual width, for all-reduce sizes; without architecture, sqrt(active / (12 * layers))."""
    hidden = _arch(model).get("hidden_size")
    if hidden:
        return float(hidden)
    return math.sqrt(_active_params(model) / (12 * _layers(model)))


def decode_flops_per_token(model: Model, context_tokens: Any) -> np.ndarray:
    """FLOPs to generate one token at this context: 2 * active params + attention over the context
    (QK^T and AV: 2 * heads * (qk_dim + v_dim) per layer per context token; MLA in absorbed form)."""
    c = np.asarray(context_tokens, dtype=float)
    width, full, sliding, window = _attention_dims(model, decode=True)
    attended = full * c + sliding * np.minimum(c, window) if window else full * c
    return 2.0 * _active_params(model) + 2.0 * width * attended


def prefill_flops(model: Model, input_tokens: Any) -> np.ndarray:
    """FLOPs to prefill a prompt: 2 * active params * tokens + causal attention, where position p attends
    p tokens (min(p, window) on sliding layers): sum = I(I+1)/2, quadratic in the prompt."""
    n = np.asarray(input_tokens, dtype=float)
    width, full, sliding, window = _attention_dims(model)
    pairs_full = n * (n + 1) / 2
    if sliding and window:
        w = float(window)
        pairs_sliding = np.where(n <= w, pairs_full, w * (w + 1) / 2 + (n - w) * w)
    else:
        pairs_sliding = 0.0
    return 2.0 * _active_params(model) * n + 2.0 * width * (full * pairs_full + sliding * pairs_sliding)


# --------------------------------------------------------------------------------------------------
# Chip-level formulas


def _precision_chain(weight_bits: float) -> list[str]:
    """Compute precisions to try for this weight precision, best first (weights stored in 8 bits run
    FP8 GEMMs where the chip has them; a chip without the format falls back to the next wider one)."""
    if weight_bits <= 4.5:
        return ["fp4", "fp8", "int8", "bf16", "fp16"]
    if weight_bits <= 8:
        return ["fp8", "int8", "bf16", "fp16"]
    return ["bf16", "fp16"]


def _compute_bits(model: Model) -> float:
    """Precision of the GEMMs that dominate: those of the narrowest weights (MoE experts)."""
    return min(weight_bits_split(model)) if model.weight_bits else 16.0


def _peak_tflops(model: Model, accel: Accelerator) -> float | None:
    for precision in _precision_chain(_compute_bits(model)):
        if accel.dense_tflops.get(precision):
            return float(accel.dense_tflops[precision])
    return None


def usable_memory_bytes(accel: Accelerator, chips: int, efficiency: Efficiency = DEFAULT_EFFICIENCY) -> float:
    """Memory a replica of `chips` chips can give to weights + KV."""
    return chips * accel.memory_gb * GB * efficiency.memory_utilization


def kv_budget_bytes(model: Model, accel: Accelerator, chips: int, efficiency: Efficiency = DEFAULT_EFFICIENCY) -> float:
    """Memory left for KV cache once the weights are loaded (negative: weights do not fit)."""
    return usable_memory_bytes(accel, chips, efficiency) - weight_bytes(model)


def min_chips(model: Model, accel: Accelerator, efficiency: Efficiency = DEFAULT_EFFICIENCY) -> int:
    """Fewest chips whose usable memory holds all weights + runtime overhead + min_kv_tokens of KV."""
    need = weight_bytes(model) + float(kv_sequence_bytes(model, efficiency.min_kv_tokens))
    per_chip = usable_memory_bytes(accel, 1, efficiency)
    return max(1, math.ceil(need / per_chip - 1e-9))


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


def chips_options(model: Model, accel: Accelerator, efficiency: Efficiency = DEFAULT_EFFICIENCY) -> list[int]:
    """Chips per replica worth considering.

    HBM: the fewest chips that hold the model, rounded up to a power of two (tensor parallelism splits
    heads, which come in powers of two), then doublings up to the scale-up domain (and at most
    max_chips_multiple x the minimum: beyond that, more replicas beat wider ones). A model too big for
    one scale-up domain spans whole domains with pipeline parallelism. SRAM: the minimum count and x2.
    Without scaleup_bandwidth_gbps, a model that fits one chip gets one-chip replicas only.
    """
    _require_model(model)
    if accel.memory_gb is None:
        raise InputError([_missing("accelerators", accel.id, "memory_gb", "give memory_gb or measured profile rows")])
    n = min_chips(model, accel, efficiency)
    if accel.memory_kind == "sram":
        return [n, 2 * n]
    first = _next_pow2(n)
    domain = accel.scaleup_domain
    if first > domain:
        stages = _next_pow2(math.ceil(n / domain))
        return [stages * domain, 2 * stages * domain]
    options = []
    chips = first
    while chips <= domain and chips <= first * efficiency.max_chips_multiple:
        options.append(chips)
        chips *= 2
    if accel.scaleup_bandwidth_gbps is None and first == 1:
        return [1]  # no fabric figure: single-chip replicas only (wider ones would need it)
    return options


# --------------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class Layout:
    """How a replica's chips share the work. `dep`: data-parallel attention over all chips + expert
    parallelism (MoE only, one stage); otherwise `tp` chips per stage, `stages` pipeline stages."""

    chips: int
    stages: int
    tp: int
    dep: bool = False

    @property
    def attention_groups(self) -> int:
        """Independent attention groups, each with its own batch (engine caps apply per group)."""
        return self.chips if self.dep else 1

    @property
    def label(self) -> str:
        if self.dep:
            return f"dep{self.chips} (dp attention + ep{self.chips})"
        return f"tp{self.tp}" + (f" x pp{self.stages}" if self.stages > 1 else "")


def tp_layout(chips: int, accel: Accelerator) -> Layout:
    stages, tp = _pipeline(chips, accel)
    return Layout(chips, stages, tp)


def layouts_for(model: Model, chips: int, accel: Accelerator) -> list[Layout]:
    """Tensor parallel always; for a mixture of experts on several chips also DEP (what TensorRT-LLM,
    SGLang and vLLM run for throughput)."""
    layouts = [tp_layout(chips, accel)]
    if _moe_shape(model) is not None and chips > 1 and _arch(model).get("num_attention_heads"):
        layouts.append(Layout(chips, 1, chips, dep=True))
    return layouts


def _pipeline(chips: int, accel: Accelerator) -> tuple[int, int]:
    """(pipeline stages, tensor-parallel chips per stage): one stage per scale-up domain."""
    if chips <= accel.scaleup_domain:
        return 1, chips
    stages = math.ceil(chips / accel.scaleup_domain)
    return stages, chips // stages


def attention_bytes(model: Model) -> float:
    """Bytes of the attention weights, all layers: what data-parallel attention copies to every rank.
    GQA: q and o (heads x head_dim x hidden each) + k and v (kv_heads x head_dim x hidden each); MLA:
    see mla_attention_bytes. 0 without architecture."""
    arch = _arch(model)
    if arch.get("kv_lora_rank"):
        return mla_attention_bytes(model)
    heads, hidden, layers = arch.get("num_attention_heads"), arch.get("hidden_size"), arch.get("num_hidden_layers")
    head_dim = _head_dim(arch)
    if not (heads and hidden and layers and head_dim):
        return 0.0
    kv_heads = _first(arch, "num_key_value_heads", "num_attention_heads")
    always_bits, _ = weight_bits_split(model)
    return float(layers * hidden * head_dim * (2 * heads + 2 * kv_heads) * always_bits / 8)


def kv_budget_for_layout(model: Model, accel: Accelerator, layout: Layout, efficiency: Efficiency) -> float:
    """KV bytes the replica holds, counted in single copies: TP replicates KV past the KV heads (MLA on
    every rank); DEP keeps one copy but every rank holds the attention weights."""
    budget = kv_budget_bytes(model, accel, layout.chips, efficiency)
    if layout.dep:
        return budget - (layout.chips - 1) * attention_bytes(model)
    return budget / kv_replication(model, layout.tp)


# --------------------------------------------------------------------------------------------------
# Step times


def grouped_gemm_efficiency(tokens_per_expert: Any, efficiency: Efficiency) -> np.ndarray:
    """Compute efficiency of grouped expert GEMMs relative to a large dense GEMM: t / (t + half)."""
    t = np.asarray(tokens_per_expert, dtype=float)
    return t / (t + efficiency.moe_half_tokens) if efficiency.moe_half_tokens > 0 else np.ones_like(t)


def tokens_per_expert(model: Model, tokens: Any) -> np.ndarray:
    """Tokens each touched expert sees in one pass over `tokens` tokens: tokens x k / distinct experts."""
    t = np.asarray(tokens, dtype=float)
    moe = _moe_shape(model)
    if moe is None:
        return t
    experts, k, _, _ = moe
    return t * k / np.maximum(distinct_experts(experts, k, t), 1e-12)


def _weight_parts(model: Model, tokens: Any) -> tuple[float, float, np.ndarray]:
    """(attention bytes, other always-active bytes, routed-expert bytes touched by `tokens` tokens)."""
    touched = weight_bytes_touched(model, tokens)
    moe = _moe_shape(model)
    attention = attention_bytes(model)
    if moe is None:
        return attention, max(float(_active_params(model) * model.weight_bits / 8) - attention, 0.0), np.zeros_like(touched)
    experts, k, moe_layers, per_expert = moe
    _, expert_bits = weight_bits_split(model)
    routed = moe_layers * per_expert * distinct_experts(experts, k, np.asarray(tokens, dtype=float)) * expert_bits / 8
    routed = np.minimum(routed, touched)
    always = touched - routed
    return attention, np.maximum(always - attention, 0.0), routed


def _expert_flops_per_token(model: Model) -> float:
    moe = _moe_shape(model)
    if moe is None:
        return 0.0
    experts, k, moe_layers, per_expert = moe
    return 2.0 * moe_layers * k * per_expert


def _peak_for_bits(accel: Accelerator, bits: float, efficiency: Efficiency) -> float:
    """Achieved FLOP/s of GEMMs on weights of `bits`: the chip's peak in the matching format x compute.
    A format the chip lacks (MXFP4 / NVFP4 on Hopper or CDNA3) runs as weight-only quantization: weights
    dequantized to BF16 in the kernel (Marlin / Triton MoE), at BF16 peak x emulated_compute."""
    chain = _precision_chain(bits)
    native = accel.dense_tflops.get(chain[0])
    if native:
        return float(native) * TB * efficiency.compute
    wide = accel.dense_tflops.get("bf16") or accel.dense_tflops.get("fp16")
    if wide:
        return float(wide) * TB * efficiency.compute * (efficiency.emulated_compute if bits < 8 else 1.0)
    for precision in chain[1:]:
        if accel.dense_tflops.get(precision):
            return float(accel.dense_tflops[precision]) * TB * efficiency.compute
    if accel.dense_tflops:  # e.g. a chip quoting only fp8: attention runs at what it has
        return float(max(accel.dense_tflops.values())) * TB * efficiency.compute
    return float("nan")


def achieved_peaks(model: Model, accel: Accelerator, efficiency: Efficiency, decode: bool = True) -> tuple[float, float, float]:
    """Achieved FLOP/s for (attention over the context, always-active weight GEMMs, routed-expert GEMMs).
    Attention runs in BF16 (FlashAttention / FlashMLA): at attention_compute when decoding (one query per
    sequence), at compute in prefill; weight GEMMs in their weights' format."""
    always_bits, expert_bits = weight_bits_split(model)
    attention = _peak_for_bits(accel, 16, efficiency)
    if decode:
        attention *= efficiency.attention_compute / efficiency.compute
    return attention, _peak_for_bits(accel, always_bits, efficiency), _peak_for_bits(accel, expert_bits, efficiency)


def roofline_time(
    model: Model, accel: Accelerator, efficiency: Efficiency, dense_bytes: Any, expert_bytes: Any,
    attention_flops: Any, dense_flops: Any, expert_flops: Any, tokens_per_expert_: Any, decode: bool = True,
) -> np.ndarray:
    """One chip's time for one pass: memory or compute, whichever is slower. Routed-expert reads run at
    moe_bandwidth of the dense achieved bandwidth; expert GEMMs at grouped_gemm_efficiency; each kind of
    FLOP at its achieved peak (achieved_peaks)."""
    bandwidth = accel.memory_bandwidth_tbps * TB * efficiency.memory_bandwidth
    memory_s = np.asarray(dense_bytes, dtype=float) / bandwidth + np.asarray(expert_bytes, dtype=float) / (
        bandwidth * efficiency.moe_bandwidth)
    attention_peak, dense_peak, expert_peak = achieved_peaks(model, accel, efficiency, decode)
    expert_eff = np.maximum(grouped_gemm_efficiency(tokens_per_expert_, efficiency), 1e-6)
    compute_s = (np.asarray(attention_flops, dtype=float) / attention_peak + np.asarray(dense_flops, dtype=float) / dense_peak
                 + np.asarray(expert_flops, dtype=float) / (expert_peak * expert_eff))
    return np.maximum(memory_s, compute_s)


def _flops_split(model: Model, tokens: Any, attention_flops: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attention, always-active weight, routed-expert) FLOPs of `tokens` tokens."""
    t = np.asarray(tokens, dtype=float)
    expert = t * _expert_flops_per_token(model)
    dense = t * 2.0 * _active_params(model) - expert
    return np.asarray(attention_flops, dtype=float), dense, expert


def allreduce_time(message_bytes: Any, chips: int, scaleup_gbps: float | None, efficiency: Efficiency) -> np.ndarray:
    """One ring all-reduce across `chips`: 2 (n-1)/n x bytes over the achieved link bandwidth + latency."""
    b = np.asarray(message_bytes, dtype=float)
    if chips <= 1:
        return np.zeros_like(b)
    bandwidth = scaleup_gbps * GB * efficiency.scaleup_bandwidth
    return 2 * (chips - 1) / chips * b / bandwidth + efficiency.allreduce_latency_s


def tp_comm_time(model: Model, tokens: Any, tp: int, accel: Accelerator, efficiency: Efficiency, layers: float) -> np.ndarray:
    """Tensor-parallel communication of one pass over `layers` layers: two all-reduces per layer
    (after attention and after the MLP) of tokens x hidden activations."""
    message = np.asarray(tokens, dtype=float) * _hidden(model) * efficiency.activation_bytes
    return 2 * layers * allreduce_time(message, tp, accel.scaleup_bandwidth_gbps, efficiency)


def alltoall_time(model: Model, tokens_per_rank: Any, layout: Layout, accel: Accelerator, efficiency: Efficiency) -> np.ndarray:
    """Expert-parallel exchange of one pass: per MoE layer, a dispatch (each token's hidden state to its
    k experts, (n-1)/n of them remote) and a combine back, over the scale-up fabric or, when the ranks
    span domains, over each chip's NIC."""
    t = np.asarray(tokens_per_rank, dtype=float)
    moe = _moe_shape(model)
    n = layout.chips
    if moe is None or n <= 1:
        return np.zeros_like(t)
    _, k, moe_layers, _ = moe
    per_token = k * _hidden(model) * (efficiency.dispatch_bytes + efficiency.combine_bytes) * (n - 1) / n
    if n <= accel.scaleup_domain and accel.scaleup_bandwidth_gbps:
        bandwidth = accel.scaleup_bandwidth_gbps * GB * efficiency.scaleup_bandwidth
    else:
        bandwidth = efficiency.scaleout_bandwidth_gbps * GB * efficiency.scaleout_efficiency
    return moe_layers * (t * per_token / bandwidth + 2 * efficiency.alltoall_latency_s)


def fixed_latency(model: Model, efficiency: Efficiency) -> float:
    """Per-step latency that does not shrink with more chips: per layer, per MoE layer, per step."""
    moe = _moe_shape(model)
    moe_layers = moe[2] if moe else 0
    return (_layers(model) * efficiency.layer_latency_s + moe_layers * efficiency.moe_layer_latency_s
            + efficiency.step_overhead_s)


def _hop_time(model: Model, tokens: Any, efficiency: Efficiency) -> np.ndarray:
    message = np.asarray(tokens, dtype=float) * _hidden(model) * efficiency.activation_bytes
    return message / (efficiency.scaleout_bandwidth_gbps * GB) + efficiency.pipeline_hop_latency_s


def _layout_arg(layout: Layout | None, chips: int, accel: Accelerator) -> Layout:
    """The layout given, or tensor parallel over `chips`."""
    return layout if layout is not None else tp_layout(chips, accel)


def decode_step_time(
    model: Model,
    accel: Accelerator,
    chips: int,
    batch: Any,
    context_tokens: Any,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
    layout: Layout | None = None,
    tokens_per_sequence: float = 1.0,
) -> np.ndarray:
    """Seconds for one decode step of `batch` sequences at `context_tokens` on one replica.

    TP: per stage max(bytes / (chips x bandwidth x eff), FLOPs / (chips x peak x eff)) + all-reduces;
    a replica spanning P domains is a P-stage pipeline of P micro-batches (each stage reads its 1/P of
    the weights once per micro-batch; a token crosses all P stages). KV is read once per copy
    (kv_replication). DEP: each rank reads the whole attention, its share of everything else and its own
    sequences' KV; experts exchange tokens by all-to-all. Plus fixed_latency. `tokens_per_sequence` > 1
    is a speculative verify step (n + 1 tokens per sequence: FLOPs and expert touches grow, KV reads do not).
    """
    batch = np.asarray(batch, dtype=float)
    lay = _layout_arg(layout, chips, accel)
    kv_seq = kv_sequence_bytes(model, context_tokens)
    q = float(tokens_per_sequence)
    attention_fpt = decode_flops_per_token(model, context_tokens) - 2.0 * _active_params(model)
    if lay.dep:
        n = lay.chips
        tokens = batch * q
        attention, other, routed = _weight_parts(model, tokens)
        dense_bytes = attention + other / n + batch / n * kv_seq
        flops = _flops_split(model, tokens, tokens * attention_fpt)
        core = roofline_time(model, accel, efficiency, dense_bytes, routed / n, *(f / n for f in flops),
                             tokens_per_expert(model, tokens))
        exchange = alltoall_time(model, tokens / n, lay, accel, efficiency)
        if n > accel.scaleup_domain:
            # wide EP over the network: engines overlap the exchange of one micro-batch with the compute of
            # the other (SGLang two-batch overlap, vLLM dual-batch overlap)
            return np.maximum(core, exchange) + fixed_latency(model, efficiency)
        return core + exchange + fixed_latency(model, efficiency)
    stages, tp = lay.stages, lay.tp
    micro = batch / stages
    tokens = micro * q
    attention, other, routed = _weight_parts(model, tokens)
    kv_read = micro * kv_seq * kv_replication(model, tp)
    per_rank = stages * tp
    flops = _flops_split(model, tokens, tokens * attention_fpt)
    core = roofline_time(model, accel, efficiency, (attention + other + kv_read) / per_rank, routed / per_rank,
                         *(f / per_rank for f in flops), tokens_per_expert(model, tokens))
    stage = core + tp_comm_time(model, tokens, tp, accel, efficiency, _layers(model) / stages)
    stage = stage + fixed_latency(model, efficiency) / stages
    if stages > 1:
        stage = stage + _hop_time(model, tokens, efficiency)
    return stages * stage


def prefill_times(
    model: Model, accel: Accelerator, chips: int, input_tokens: Any, efficiency: Efficiency = DEFAULT_EFFICIENCY,
    layout: Layout | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(replica time one prompt consumes when prefills are batched, latency of one prompt alone).

    The first is compute (batched prefills share weight reads; expert GEMMs at the efficiency of a
    max_num_tokens chunk) plus the prompt's collectives: it is what each request takes away from decode.
    The second adds the weight reads of a lone prompt and the fixed latencies, and for pipelines the trip
    through every stage: the TTFT on an idle replica.
    """
    n_tok = np.asarray(input_tokens, dtype=float)
    lay = _layout_arg(layout, chips, accel)
    flops = _flops_split(model, n_tok, prefill_flops(model, n_tok) - 2.0 * _active_params(model) * n_tok)
    per_chip = [f / chips for f in flops]
    chunk = np.minimum(n_tok, efficiency.max_num_tokens) * (lay.chips if lay.dep else 1)
    tpe = tokens_per_expert(model, chunk)
    compute = roofline_time(model, accel, efficiency, 0.0, 0.0, *per_chip, tpe, decode=False)
    attention, other, routed = _weight_parts(model, n_tok)
    if lay.dep:
        comm = alltoall_time(model, n_tok, lay, accel, efficiency)
        share = compute + comm / lay.chips
        reads = attention + other / chips
    else:
        comm = tp_comm_time(model, n_tok, lay.tp, accel, efficiency, _layers(model))
        share = compute + comm / lay.stages
        reads = (attention + other) / chips
    alone = roofline_time(model, accel, efficiency, reads, routed / chips, *per_chip, tpe, decode=False)
    alone = alone + comm + fixed_latency(model, efficiency)
    if lay.stages > 1:
        alone = alone + (lay.stages - 1) * _hop_time(model, n_tok, efficiency)
    return share, alone


# --------------------------------------------------------------------------------------------------
# Speculative decoding


def expected_accepted_tokens(draft_tokens: int, acceptance: float) -> float:
    """Tokens one verify step yields per sequence: the accepted run of draft tokens plus the target's own
    token, each draft accepted with probability `acceptance` given the previous: (1 - a^(n+1)) / (1 - a)."""
    n, a = int(draft_tokens), float(acceptance)
    if a >= 1.0:
        return float(n + 1)
    return (1.0 - a ** (n + 1)) / (1.0 - a)


def draft_step_time(model: Model, accel: Accelerator, layout: Layout, batch: Any, efficiency: Efficiency) -> np.ndarray:
    """One draft pass for `batch` sequences. MTP: one extra transformer layer of the model (its share of
    the active weights, one layer's latency). Draft model: draft_params_b active parameters at the model's
    weight bits, read once per pass, plus the layer latencies of a draft as wide as the model (its layers
    ~ target layers x draft params / target active params, at least one: EAGLE heads are one layer)."""
    spec = model.speculative
    b = np.asarray(batch, dtype=float)
    layers = _layers(model)
    if spec.method == "mtp":
        params = _active_params(model) / layers
        latency = efficiency.layer_latency_s + (efficiency.moe_layer_latency_s if _moe_shape(model) else 0.0)
    else:
        params = spec.draft_params_b * 1e9
        latency = max(1, round(layers * params / _active_params(model))) * efficiency.layer_latency_s
    bytes_ = params * model.weight_bits / 8 / layout.chips
    flops = b * 2 * params / layout.chips
    return roofline_time(model, accel, efficiency, bytes_, 0.0, 0.0, flops, 0.0, 1.0) + latency


def token_step_time(model: Model, accel: Accelerator, layout: Layout, batch: Any, context_tokens: Any,
                    efficiency: Efficiency) -> tuple[np.ndarray, float]:
    """(seconds per generated token of every sequence in the batch, tokens per verify step).

    Without speculation: the decode step, 1. With it: (verify step over n + 1 tokens + n draft passes)
    / expected accepted tokens."""
    spec = model.speculative
    if spec is None:
        return decode_step_time(model, accel, layout.chips, batch, context_tokens, efficiency, layout), 1.0
    n = int(spec.draft_tokens)
    verify = decode_step_time(model, accel, layout.chips, batch, context_tokens, efficiency, layout, tokens_per_sequence=n + 1)
    gained = expected_accepted_tokens(n, spec.acceptance)
    return (verify + n * draft_step_time(model, accel, layout, batch, efficiency)) / gained, gained


# --------------------------------------------------------------------------------------------------
# Operating points


def ttft_under_load(alone: Any, share: Any, step: Any, rps: Any, input_tokens: Any, batch: Any,
                    layout: Layout, efficiency: Efficiency) -> np.ndarray:
    """TTFT at an operating point, not on an idle replica. Approximation (documented in ESTIMATOR.md):

    * the prompt is prefilled in chunks of what a step has room for (max_num_tokens minus the decode
      tokens of the group's batch), each chunk riding one step of the running batch: chunks x step +
      the prompt's own prefill compute, and never less than the lone-prompt latency;
    * it first waits behind the other prompts' prefill work: an M/D/1 queue whose utilization is the
      fraction of replica time spent prefilling at this operating point (rps x share): rho / (2 (1 - rho))
      x share.
    """
    group_batch = np.asarray(batch, dtype=float) / layout.attention_groups
    room = np.maximum(efficiency.max_num_tokens - group_batch, efficiency.max_num_tokens / 8)
    chunks = np.ceil(np.asarray(input_tokens, dtype=float) / room)
    interleaved = np.maximum(alone, chunks * step + share)
    rho = np.clip(np.asarray(rps, dtype=float) * share, 0.0, 0.999)
    return interleaved + rho / (2 * (1 - rho)) * share


def max_concurrency(model: Model, layout: Layout, budget: float, mean_context: Any, efficiency: Efficiency) -> np.ndarray:
    """Largest batch a replica runs: what its KV holds, capped by the engine (max_batch sequences and
    max_num_tokens tokens per step in each attention group)."""
    per_step = 1 + (model.speculative.draft_tokens if model.speculative else 0)
    engine = layout.attention_groups * min(efficiency.max_batch, efficiency.max_num_tokens // per_step)
    fit = np.floor(budget / kv_sequence_bytes(model, mean_context)).astype(int)
    return np.clip(fit, 1, max(engine, 1))


def operating_points(model: Model, accel: Accelerator, layout: Layout, inputs: Any, outputs: Any, batches: Any,
                     efficiency: Efficiency) -> dict[str, np.ndarray]:
    """Vectorized over (input, output, batch): replica requests/s, per-user tok/s, TTFT under load, step.

    Sequences hold on average input + output/2 tokens of KV. Each request costs its prefill share plus
    output x step / batch of replica time; per-user speed is what decode gets of the replica's time."""
    i = np.asarray(inputs, dtype=float)
    o = np.asarray(outputs, dtype=float)
    b = np.asarray(batches, dtype=float)
    step, _ = token_step_time(model, accel, layout, b, i + o / 2, efficiency)
    share, alone = prefill_times(model, accel, layout.chips, i, efficiency, layout)
    rps = 1.0 / (share + o * step / b)
    per_user = (1.0 - rps * share) / step
    ttft = ttft_under_load(alone, share, step, rps, i, b, layout, efficiency)
    return {"requests_per_s": rps, "per_user": per_user, "ttft_s": ttft, "step_s": step}


# --------------------------------------------------------------------------------------------------
# Uncertainty bands


@dataclass(frozen=True)
class Bands:
    """Multiplicative bands (low, high) on throughput, per-user speed and TTFT: measured / estimate
    ranges of the calibration (benchmarks/ESTIMATOR.md), wider for uncalibrated presets."""

    throughput: tuple[float, float]
    speed: tuple[float, float]
    ttft: tuple[float, float]


CALIBRATED_BANDS = Bands(throughput=(0.78, 1.42), speed=(0.69, 1.34), ttft=(0.5, 2.0))
"""Range of measured / estimate over the validation points of each kind, rounded outward (throughput
0.787-1.416 over 29 points, per-user speed 0.698-1.335 over 6; benchmarks/VALIDATION.md); TTFT has only
two public points (0.98-1.19), so its band is set to a factor 2 by hand. tests/test_validation.py checks
the bands still cover the residuals."""

UNCALIBRATED_WIDENING = 1.5
"""Extra factor on both sides for presets no public point calibrates."""


def band_factors(preset: Preset) -> Bands:
    if preset.calibrated:
        return CALIBRATED_BANDS
    w = UNCALIBRATED_WIDENING
    widen = lambda lo_hi: (lo_hi[0] / w, lo_hi[1] * w)  # noqa: E731
    return Bands(widen(CALIBRATED_BANDS.throughput), widen(CALIBRATED_BANDS.speed), widen(CALIBRATED_BANDS.ttft))


BAND_COLUMNS = ["requests_per_s_low", "requests_per_s_high", "output_tokens_per_s_per_user_low",
                "output_tokens_per_s_per_user_high", "ttft_s_low", "ttft_s_high"]


# --------------------------------------------------------------------------------------------------
# The profile table


def _batch_sweep(max_batch: int) -> list[int]:
    sizes = [1 << i for i in range(max(0, max_batch).bit_length()) if (1 << i) <= max_batch]
    if max_batch >= 1 and (not sizes or sizes[-1] != max_batch):
        sizes.append(max_batch)
    return sizes


def _zero_row(model: Model, accel: Accelerator, chips: int, i: int, o: int, note: str) -> dict[str, Any]:
    return {
        "model": model.id,
        "accelerator": accel.id,
        "chips_per_replica": chips,
        "input_tokens": i,
        "output_tokens": o,
        "requests_per_s": 0.0,
        "output_tokens_per_s": 0.0,
        "output_tokens_per_s_per_user": math.nan,
        "ttft_s": math.nan,
        "batch_size": math.nan,
        "source": "estimated",
        "note": note,
        **{c: (0.0 if c.startswith("requests") else math.nan) for c in BAND_COLUMNS},
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    for column in ("chips_per_replica", "input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("int64")
    for column in ("requests_per_s", "output_tokens_per_s", "output_tokens_per_s_per_user", "ttft_s", "batch_size",
                   *BAND_COLUMNS):
        frame[column] = frame[column].astype("float64")
    for column in ("model", "accelerator", "source", "note"):
        frame[column] = frame[column].astype(object)
    return frame


def _lengths(lengths: pd.DataFrame) -> list[tuple[int, int]]:
    missing = [c for c in ("input_tokens", "output_tokens") if c not in lengths.columns]
    if missing:
        raise InputError([Problem("estimator", "lengths", f"missing columns {missing}; give input_tokens and output_tokens")])
    pairs = lengths[["input_tokens", "output_tokens"]].drop_duplicates()
    return [(int(i), int(o)) for i, o in pairs.itertuples(index=False)]


def estimate_profile(
    model: Model,
    accel: Accelerator,
    lengths: pd.DataFrame,
    chips: list[int] | None = None,
    efficiency: Efficiency | None = None,
) -> pd.DataFrame:
    """Estimated operating points: for each chip count, layout and length pair, one row per batch size on
    the sweep 1, 2, 4, ..., largest that runs (rows that add no throughput dropped): the speed/throughput
    frontier, with low/high bands. What cannot be served gets one row with requests_per_s 0 and a note
    saying why. `efficiency` None: the accelerator's preset and overrides (efficiency_for)."""
    factors, preset = efficiency_for(accel, efficiency)
    _require_model(model)
    chip_list = list(chips) if chips is not None else chips_options(model, accel, factors)
    _require_accelerator(accel, model, chip_list)
    pairs = _lengths(lengths)
    rows: list[dict[str, Any]] = []
    for n in chip_list:
        rows += _rows_for_chips(model, accel, int(n), pairs, factors, preset)
    return _frame(rows)


def _rows_for_chips(
    model: Model, accel: Accelerator, chips: int, pairs: list[tuple[int, int]], efficiency: Efficiency, preset: Preset
) -> list[dict[str, Any]]:
    if accel.memory_kind == "sram":
        return [_sram_row(model, accel, chips, i, o, efficiency) for i, o in pairs]
    budget = kv_budget_bytes(model, accel, chips, efficiency)
    if budget <= 0:
        note = _weights_do_not_fit(model, accel, chips, efficiency)
        return [_zero_row(model, accel, chips, i, o, note) for i, o in pairs]
    if chips > accel.scaleup_domain and chips % accel.scaleup_domain:
        note = f"{chips} chips span scale-up domains of {accel.scaleup_domain}; use a multiple of {accel.scaleup_domain}"
        return [_zero_row(model, accel, chips, i, o, note) for i, o in pairs]
    rows: list[dict[str, Any]] = []
    for layout in layouts_for(model, chips, accel):
        rows += _rows_for_layout(model, accel, layout, pairs, efficiency, preset)
    return _one_zero_row_per_point(rows)


def _one_zero_row_per_point(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Across layouts: a length pair some layout serves keeps no zero row; one nobody serves keeps the
    first layout's (tensor parallel) reason only."""
    served = {(r["input_tokens"], r["output_tokens"]) for r in rows if r["requests_per_s"] > 0}
    kept, seen = [], set()
    for row in rows:
        key = (row["input_tokens"], row["output_tokens"])
        if row["requests_per_s"] > 0:
            kept.append(row)
        elif key not in served and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _rows_for_layout(model, accel, layout: Layout, pairs, efficiency: Efficiency, preset: Preset) -> list[dict[str, Any]]:
    """Rows of one layout; the KV budget is counted in single copies of the KV."""
    chips = layout.chips
    budget = kv_budget_for_layout(model, accel, layout, efficiency)
    where = f"{chips}x {accel.id}" + (" (dp attention)" if layout.dep else "")
    if budget <= 0:
        return [_zero_row(model, accel, chips, i, o, f"attention copies leave no KV room in {where}") for i, o in pairs]
    fits = max_context_that_fits(model, budget)
    rows: list[dict[str, Any]] = []
    servable: list[tuple[int, int]] = []
    for i, o in pairs:
        reason = _context_problem(model, i + o, fits, where)
        if reason:
            rows.append(_zero_row(model, accel, chips, i, o, reason))
        else:
            servable.append((i, o))
    if servable:
        rows += _sweep(model, accel, layout, servable, budget, efficiency, preset)
    return rows


def _weights_do_not_fit(model: Model, accel: Accelerator, chips: int, efficiency: Efficiency) -> str:
    return (
        f"weights {weight_bytes(model) / GB:.1f} GB do not fit in {chips}x {accel.id} "
        f"({usable_memory_bytes(accel, chips, efficiency) / GB:.1f} GB usable)"
    )


def _context_problem(model: Model, context: int, fits: int, where: str) -> str | None:
    """Why a request of this context cannot be served, or None."""
    if model.max_context_tokens is not None and context > model.max_context_tokens:
        return f"context {context} > max_context_tokens {model.max_context_tokens} of {model.id}"
    if context > fits:
        return f"context {context} > {fits} fits in {where}"
    return None


def _sram_row(model: Model, accel: Accelerator, chips: int, i: int, o: int, efficiency: Efficiency) -> dict[str, Any]:
    """SRAM chips: size, never speed. The note carries the sizing so a user can measure the right setup."""
    where = f"{chips}x {accel.id}"
    budget = kv_budget_bytes(model, accel, chips, efficiency) / kv_replication(model, _pipeline(chips, accel)[1])
    if budget <= 0:
        sizing = _weights_do_not_fit(model, accel, chips, efficiency)
    else:
        fits = max_context_that_fits(model, budget)
        sizing = f"sizing: {where} holds weights {weight_bytes(model) / GB:.1f} GB + KV; max context that fits {fits}"
        reason = _context_problem(model, i + o, fits, where)
        if reason:
            sizing = f"{reason}; {sizing}"
        else:
            concurrent = int(budget // float(kv_sequence_bytes(model, i + o / 2)))
            sizing += f", ~{concurrent} concurrent sequences at {i}+{o} tokens"
    return _zero_row(model, accel, chips, i, o, f"{SRAM_NOTE}; {sizing}")


def _sweep(
    model: Model, accel: Accelerator, layout: Layout, pairs: list[tuple[int, int]], budget: float,
    efficiency: Efficiency, preset: Preset,
) -> list[dict[str, Any]]:
    """Vectorized over (length pair x batch size), batches up to max_concurrency."""
    inputs = np.array([p[0] for p in pairs], dtype=float)
    outputs = np.array([p[1] for p in pairs], dtype=float)
    limits = max_concurrency(model, layout, budget, inputs + outputs / 2, efficiency)
    pair_index, batches = [], []
    for k, limit in enumerate(limits):
        sweep = _batch_sweep(int(limit))
        pair_index += [k] * len(sweep)
        batches += sweep
    idx = np.array(pair_index)
    b = np.array(batches, dtype=float)
    points = operating_points(model, accel, layout, inputs[idx], outputs[idx], b, efficiency)
    rps, per_user, ttft = points["requests_per_s"], points["per_user"], points["ttft_s"]
    bands = band_factors(preset)
    note = f"roofline estimate, {layout.label}" + ("" if preset.calibrated else "; efficiency not calibrated for this accelerator")
    if model.speculative is not None:
        note += f", {model.speculative.method} speculative x{model.speculative.draft_tokens}"
    rows = []
    best: dict[int, float] = {}
    for j in range(len(b)):
        k = int(idx[j])
        if rps[j] <= best.get(k, 0.0) * 1.001:
            continue  # a bigger batch that adds no throughput is off the frontier
        best[k] = rps[j]
        i, o = pairs[k]
        rows.append(
            {
                "model": model.id,
                "accelerator": accel.id,
                "chips_per_replica": layout.chips,
                "input_tokens": i,
                "output_tokens": o,
                "requests_per_s": float(rps[j]),
                "output_tokens_per_s": float(rps[j] * o),
                "output_tokens_per_s_per_user": float(per_user[j]),
                "ttft_s": float(ttft[j]),
                "batch_size": float(b[j]),
                "source": "estimated",
                "note": note,
                "requests_per_s_low": float(rps[j] * bands.throughput[0]),
                "requests_per_s_high": float(rps[j] * bands.throughput[1]),
                "output_tokens_per_s_per_user_low": float(per_user[j] * bands.speed[0]),
                "output_tokens_per_s_per_user_high": float(per_user[j] * bands.speed[1]),
                "ttft_s_low": float(ttft[j] * bands.ttft[0]),
                "ttft_s_high": float(ttft[j] * bands.ttft[1]),
            }
        )
    return rows
