"""Performance model: operating points of one replica from chip and model specs.

Nobody has measured every model on every chip, so where no measured profile row exists the optimizer
uses the rows this module derives. The model is a roofline with named, calibrated efficiency factors:

* memory: weights (all experts resident) + KV cache + runtime overhead must fit in the replica's usable
  memory; that fixes the chip counts worth considering, the longest context and the largest batch;
* decode step = max(bytes read / bandwidth, FLOPs / peak) + tensor-parallel all-reduces + a fixed
  per-layer latency, where bytes read = weights touched by the batch (MoE: expected distinct experts)
  + the batch's KV cache; mixture-of-experts models reach a calibrated fraction of that roofline;
* a model too big for one scale-up domain spans whole domains as a pipeline;
* prefill (2 * active params * tokens + causal attention) costs replica time too: each request's
  prefill is charged against the same compute budget as decode, otherwise throughput comes out ~2x
  too high against MLPerf;
* SRAM / wafer-scale chips are sized (chips, context that fits) but get no speed: a bandwidth roofline
  overshoots them by orders of magnitude, so their speed must come from measured rows.

Not modelled: speculative decoding (MTP, draft models), prefix caching, disaggregated prefill, KV
offload; measured rows capture them. Every function is pure; the sweep over lengths x batch sizes is
numpy-vectorized (milliseconds per (model, accelerator) pair). Efficiency defaults are calibrated on
shared/data/validation_points.csv (MLPerf v4.1 Llama-2-70B on 8x H100 / 8x H200); see
tests/test_estimator.py for the comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from placement.errors import InputError, Problem
from placement.scenario import PROFILE_COLUMNS, Accelerator, Model

GB = 1e9
TB = 1e12


@dataclass(frozen=True)
class Efficiency:
    """Fractions of datasheet peaks a good serving stack achieves, and fixed overheads.

    Defaults are calibrated on MLPerf Inference v4.1 Llama-2-70B (8x H100, 8x H200; offline and server,
    shared/data/validation_points.csv), cross-checked at small batch against NVIDIA NIM's published
    Llama-3.3-70B FP8 TP2 latencies on 2x H100, and for MoE against TensorRT-LLM's DeepSeek-R1 results
    (see tests/test_estimator.py). Compute and memory_bandwidth matter at large and small batch
    respectively; the rest are overheads that matter at small batch or on many chips.
    """

    memory_bandwidth: float = 0.70
    """Fraction of peak HBM bandwidth achieved by decode (weights + KV reads). vidur's H100 GEMM profiles
    give 86% (TP1) .. 73% (TP8); attention and small kernels pull the mean below the GEMM figure."""

    compute: float = 0.68
    """Fraction of peak dense FLOP/s (MFU) for prefill and compute-bound decode. vidur measures 69-76% for
    large BF16 GEMMs on H100; FP8 GEMMs, attention, norms and sampling bring the end-to-end figure lower."""

    moe_roofline: float = 0.6
    """Fraction of the dense roofline (bandwidth and compute) a mixture-of-experts model reaches: expert
    load imbalance, grouped GEMMs over few tokens per expert, expert-parallel exchange. Calibrated on
    TensorRT-LLM's DeepSeek-R1 max-throughput results (8x H200 FP8: 1436 tok/s/GPU at batch 1024;
    8x B200 FP4: 4548 tok/s/GPU at batch 3072), which a dense roofline overshoots ~1.7x."""

    scaleup_bandwidth: float = 0.5
    """Fraction of the quoted per-chip scale-up bandwidth an all-reduce achieves. Vendors quote both
    directions summed (NVLink4: 900 GB/s = 450 each way), and a ring moves data one way at a time."""

    allreduce_latency_s: float = 8e-6
    """Fixed latency of one tensor-parallel all-reduce (launch + synchronization), seconds."""

    layer_latency_s: float = 20e-6
    """Fixed per-layer, per-step latency (kernel launches, norms, small ops), seconds. NIM's batch-1
    inter-token latencies (Llama-3.1-8B, Llama-3.3-70B TP2) leave ~40 us per layer beyond the weight
    reads, all-reduces included."""

    moe_layer_latency_s: float = 100e-6
    """Extra fixed latency per mixture-of-experts layer and step (routing, token permutation, grouped
    expert GEMMs on a few tokens each, expert-parallel exchange), seconds. TensorRT-LLM's DeepSeek-R1
    batch-1 speed on 8x H200 (158 tok/s/user with 3-layer MTP, so ~60 without) implies 150-250 us;
    smaller MoEs (gpt-oss, Mixtral) run faster single-stream, so this is a middle value."""

    memory_utilization: float = 0.90
    """Fraction of chip memory the runtime can give to weights + KV; the rest is activations, CUDA
    graphs, fragmentation (vLLM's gpu_memory_utilization default)."""

    min_kv_tokens: int = 8192
    """KV tokens a replica must hold beyond its weights to be worth deploying ("some KV")."""

    max_batch: int = 4096
    """Largest number of concurrent sequences per replica (TensorRT-LLM's DeepSeek-R1 max-throughput runs
    use 3072-7168 on 8 GPUs; memory usually binds first)."""

    max_chips_multiple: int = 8
    """chips_options goes up to this multiple of the minimum chip count (more rarely pays)."""

    scaleout_bandwidth_gbps: float = 50.0
    """Per-chip scale-out (NIC) bandwidth, GB/s, for pipeline hops between scale-up domains (400 Gb/s)."""

    pipeline_hop_latency_s: float = 20e-6
    """Fixed latency of one pipeline-stage hop between scale-up domains, seconds."""

    activation_bytes: int = 2
    """Bytes per activation element exchanged by all-reduces and pipeline hops (BF16)."""


DEFAULT_EFFICIENCY = Efficiency()

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


def roofline_time(
    bytes_read: Any,
    flops: Any,
    chips: int,
    bandwidth_tbps: float,
    peak_tflops: float,
    efficiency: Efficiency,
    scale: float = 1.0,
) -> np.ndarray:
    """Time of one forward pass limited by memory or compute, whichever is slower. `scale` derates both
    (moe_roofline for mixture-of-experts models)."""
    memory_s = np.asarray(bytes_read, dtype=float) / (chips * bandwidth_tbps * TB * efficiency.memory_bandwidth * scale)
    compute_s = np.asarray(flops, dtype=float) / (chips * peak_tflops * TB * efficiency.compute * scale)
    return np.maximum(memory_s, compute_s)


def _roofline_scale(model: Model, efficiency: Efficiency) -> float:
    return efficiency.moe_roofline if _moe_shape(model) is not None else 1.0


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


def decode_step_time(
    model: Model,
    accel: Accelerator,
    chips: int,
    batch: Any,
    context_tokens: Any,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
    data_parallel_attention: bool = False,
) -> np.ndarray:
    """Seconds for one decode step of `batch` sequences at `context_tokens` on one replica.

    Within a scale-up domain: max(bytes / (chips x bandwidth x eff), FLOPs / (chips x peak x eff))
    + tensor-parallel all-reduces + per-layer latency; bytes = weights touched + the batch's KV.
    A replica spanning P domains is a P-stage pipeline of P micro-batches: each stage reads its 1/P of
    the weights once per micro-batch, and a token crosses all P stages, so per-token time is P stage times.
    KV is read once per copy (kv_replication); with data-parallel attention (MLA) each rank keeps only
    its own sequences' KV but reads the whole attention weights.
    """
    batch = np.asarray(batch, dtype=float)
    stages, tp = _pipeline(chips, accel)
    micro = batch / stages
    layers = _layers(model) / stages
    copies = 1.0 if data_parallel_attention else kv_replication(model, tp)
    kv_read = micro * kv_sequence_bytes(model, context_tokens) * copies
    attention_copies = (tp - 1) * mla_attention_bytes(model) if data_parallel_attention else 0.0
    bytes_read = (weight_bytes_touched(model, micro) + kv_read + attention_copies) / stages
    flops = micro * decode_flops_per_token(model, context_tokens) / stages
    peak = _peak_tflops(model, accel)
    stage = roofline_time(bytes_read, flops, tp, accel.memory_bandwidth_tbps, peak, efficiency, _roofline_scale(model, efficiency))
    stage = stage + tp_comm_time(model, micro, tp, accel, efficiency, layers) + _fixed_latency(model, efficiency) / stages
    if stages > 1:
        stage = stage + _hop_time(model, micro, efficiency)
    return stages * stage


def _fixed_latency(model: Model, efficiency: Efficiency) -> float:
    """Per-pass latency that does not shrink with more chips: per-layer overheads, more for MoE layers."""
    moe = _moe_shape(model)
    moe_layers = moe[2] if moe else 0
    return _layers(model) * efficiency.layer_latency_s + moe_layers * efficiency.moe_layer_latency_s


def _pipeline(chips: int, accel: Accelerator) -> tuple[int, int]:
    """(pipeline stages, tensor-parallel chips per stage): one stage per scale-up domain."""
    if chips <= accel.scaleup_domain:
        return 1, chips
    stages = math.ceil(chips / accel.scaleup_domain)
    return stages, chips // stages


def _hop_time(model: Model, tokens: Any, efficiency: Efficiency) -> np.ndarray:
    message = np.asarray(tokens, dtype=float) * _hidden(model) * efficiency.activation_bytes
    return message / (efficiency.scaleout_bandwidth_gbps * GB) + efficiency.pipeline_hop_latency_s


def prefill_times(
    model: Model, accel: Accelerator, chips: int, input_tokens: Any, efficiency: Efficiency = DEFAULT_EFFICIENCY
) -> tuple[np.ndarray, np.ndarray]:
    """(replica time one prompt consumes when prefills are batched, latency of one prompt alone).

    The first is pure compute (batched prefills share weight reads): it is what each request takes away
    from decode. The second adds the weight reads of a lone prompt, all-reduces, layer latencies and,
    for pipelines, the trip through every stage: it is the TTFT on an idle replica.
    """
    n = np.asarray(input_tokens, dtype=float)
    stages, tp = _pipeline(chips, accel)
    peak = _peak_tflops(model, accel)
    flops = prefill_flops(model, n)
    layers = _layers(model)
    comm = tp_comm_time(model, n, tp, accel, efficiency, layers)
    scale = _roofline_scale(model, efficiency)
    share = flops / (chips * peak * TB * efficiency.compute * scale) + comm / stages
    alone = roofline_time(weight_bytes_touched(model, n), flops, tp, accel.memory_bandwidth_tbps, peak, efficiency, scale)
    alone = alone + comm + _fixed_latency(model, efficiency)
    if stages > 1:
        alone = alone + (stages - 1) * _hop_time(model, n, efficiency)
    return share, alone


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
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    for column in ("chips_per_replica", "input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("int64")
    for column in ("requests_per_s", "output_tokens_per_s", "output_tokens_per_s_per_user", "ttft_s", "batch_size"):
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
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
) -> pd.DataFrame:
    """Estimated operating points: for each chip count and length pair, one row per batch size on the
    sweep 1, 2, 4, ..., largest that fits (rows that add no throughput dropped): the speed/throughput
    frontier. What cannot be served gets one row with requests_per_s 0 and a note saying why."""
    _require_model(model)
    chip_list = list(chips) if chips is not None else chips_options(model, accel, efficiency)
    _require_accelerator(accel, model, chip_list)
    pairs = _lengths(lengths)
    rows: list[dict[str, Any]] = []
    for n in chip_list:
        rows += _rows_for_chips(model, accel, int(n), pairs, efficiency)
    return _frame(rows)


def _rows_for_chips(
    model: Model, accel: Accelerator, chips: int, pairs: list[tuple[int, int]], efficiency: Efficiency
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
    for dp_attention in _attention_layouts(model, chips, accel):
        rows += _rows_for_layout(model, accel, chips, pairs, budget, efficiency, dp_attention)
    return rows


def _attention_layouts(model: Model, chips: int, accel: Accelerator) -> list[bool]:
    """Tensor-parallel attention always; for MLA on several chips also data-parallel attention, which
    keeps one copy of the latent KV instead of one per rank (what SGLang and TensorRT-LLM run)."""
    tp = _pipeline(chips, accel)[1]
    return [False, True] if _arch(model).get("kv_lora_rank") and tp > 1 else [False]


def _rows_for_layout(model, accel, chips, pairs, budget, efficiency, dp_attention) -> list[dict[str, Any]]:
    """Rows of one attention layout; the KV budget is counted in single copies of the KV."""
    tp = _pipeline(chips, accel)[1]
    if dp_attention:
        budget = budget - (tp - 1) * mla_attention_bytes(model)
    else:
        budget = budget / kv_replication(model, tp)
    where = f"{chips}x {accel.id}" + (" (dp attention)" if dp_attention else "")
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
        rows += _sweep(model, accel, chips, servable, budget, efficiency, dp_attention)
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
    model: Model, accel: Accelerator, chips: int, pairs: list[tuple[int, int]], budget: float, efficiency: Efficiency,
    dp_attention: bool = False,
) -> list[dict[str, Any]]:
    """Vectorized over (length pair x batch size). Sequences hold on average input + output/2 tokens of KV
    (paged KV grows as they decode), so that sets the largest batch."""
    inputs = np.array([p[0] for p in pairs], dtype=float)
    outputs = np.array([p[1] for p in pairs], dtype=float)
    mean_context = inputs + outputs / 2
    max_fit = np.floor(budget / kv_sequence_bytes(model, mean_context)).astype(int)
    max_fit = np.clip(max_fit, 1, efficiency.max_batch)
    pair_index, batches = [], []
    for k, limit in enumerate(max_fit):
        sweep = _batch_sweep(int(limit))
        pair_index += [k] * len(sweep)
        batches += sweep
    idx = np.array(pair_index)
    b = np.array(batches, dtype=float)
    step = decode_step_time(model, accel, chips, b, mean_context[idx], efficiency, dp_attention)
    share, alone = prefill_times(model, accel, chips, inputs[idx], efficiency)
    seconds_per_request = share + outputs[idx] * step / b
    rps = 1.0 / seconds_per_request
    prefill_fraction = rps * share
    per_user = (1.0 - prefill_fraction) / step
    ttft = alone + step
    rows = []
    best: dict[int, float] = {}
    stages, tp = _pipeline(chips, accel)
    layout = f"tp{tp}" + (f" x pp{stages}" if stages > 1 else "") + (", dp attention" if dp_attention else "")
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
                "chips_per_replica": chips,
                "input_tokens": i,
                "output_tokens": o,
                "requests_per_s": float(rps[j]),
                "output_tokens_per_s": float(rps[j] * o),
                "output_tokens_per_s_per_user": float(per_user[j]),
                "ttft_s": float(ttft[j]),
                "batch_size": float(b[j]),
                "source": "estimated",
                "note": f"roofline estimate, {layout}",
            }
        )
    return rows
