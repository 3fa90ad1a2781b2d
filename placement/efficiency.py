"""Efficiency factors of the estimator: what fraction of datasheet peaks a serving stack reaches, and
its fixed overheads, per vendor and generation. One place for every constant and its source.

`Efficiency` holds the factors; `PRESETS` the defaults per vendor/generation with whether public
measurements calibrate them (benchmarks/ESTIMATOR.md has the table, benchmarks/validate_estimator.py
regenerates the fit); `efficiency_for(accelerator)` resolves an accelerator's preset plus its own
overrides (`efficiency:` in the catalog or scenario, or `estimator_overrides:` from `placement calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peaks and fixed overheads. Every default below is the NVIDIA Hopper preset, fitted
    on shared/data/validation_points*.csv unless its docstring says otherwise."""

    memory_bandwidth: float = 0.70
    """Fraction of peak HBM bandwidth dense decode reaches (weights + KV reads). Calibrated on MLPerf v4.1
    Llama-2-70B (validation points V1a-V2b) and held there; vidur's H100 GEMM profiles bound it (86% at TP1
    .. 73% at TP8; attention and small kernels pull it lower)."""

    compute: float = 0.68
    """Fraction of peak dense FLOP/s for prefill and compute-bound decode. Calibrated on MLPerf Llama-2-70B
    and held; vidur measures 69-76% for large BF16 GEMMs on H100 (validation point V5)."""

    attention_compute: float = 0.093
    """Fraction of the BF16 peak that decode attention over the context reaches (one query per sequence:
    split-KV reductions, softmax and per-sequence tiles keep it far below GEMMs; prefill attention runs at
    `compute`). Binds mostly for MLA, whose absorbed decode attention is compute-heavy (128 heads over a
    576-wide latent). Fitted on the DeepSeek throughput points."""

    moe_bandwidth: float = 0.82
    """Fraction of the dense achieved bandwidth that routed-expert weight reads reach (grouped GEMMs over
    few tokens per expert, expert load imbalance). Fitted on the MoE throughput points (replaces the old
    moe_roofline 0.6 that derated every MoE term)."""

    moe_half_tokens: float = 69.0
    """Tokens per expert at which a grouped expert GEMM reaches half its large-GEMM compute efficiency:
    efficiency(t) = compute x t / (t + moe_half_tokens), a tile of M rows half filled. Fitted."""

    emulated_compute: float = 0.32
    """Fraction of the BF16 achieved peak that GEMMs on a weight format the chip lacks reach (MXFP4 / NVFP4
    on Hopper or CDNA3: weights dequantized in the kernel, Triton / Marlin MoE). Fitted on gpt-oss on H200."""

    scaleup_bandwidth: float = 0.5
    """Fraction of the quoted per-chip scale-up bandwidth a collective achieves. Vendors quote both
    directions summed (NVLink4: 900 GB/s = 450 each way), and a ring moves data one way at a time."""

    scaleout_bandwidth_gbps: float = 50.0
    """Per-chip scale-out (NIC) bandwidth, GB/s (400 Gb/s ConnectX-7): pipeline hops between scale-up
    domains and wide expert-parallel all-to-alls beyond one domain."""

    scaleout_efficiency: float = 0.8
    """Fraction of the NIC bandwidth an all-to-all reaches (DeepEP reports ~40-46 GB/s of 50 over IB)."""

    allreduce_latency_s: float = 8e-6
    """Fixed latency of one tensor-parallel all-reduce (launch + synchronization), seconds."""

    alltoall_latency_s: float = 15e-6
    """Fixed latency of one expert-parallel dispatch or combine, seconds (DeepEP low-latency kernels
    report ~10-20 us within a node)."""

    dispatch_bytes: float = 1.0
    """Bytes per hidden element an expert-parallel dispatch sends (FP8 dispatch in DeepEP/TRT-LLM)."""

    combine_bytes: float = 2.0
    """Bytes per hidden element an expert-parallel combine returns (BF16)."""

    layer_latency_s: float = 20e-6
    """Fixed per-layer, per-step latency (kernel launches, norms, small ops), seconds. Fitted with NIM's
    batch-1 Llama-3.3-70B TP2 inter-token latency."""

    moe_layer_latency_s: float = 75e-6
    """Extra fixed latency per mixture-of-experts layer and step (router, top-k, token permutation and
    un-permutation, grouped-GEMM launch), seconds. Fitted on the batch-1 MoE speeds (gpt-oss, DeepSeek-R1);
    replaces the earlier hand-set 100 us."""

    step_overhead_s: float = 32e-6
    """Per-step latency that does not scale with layers (scheduling, sampling, host-device sync), seconds.
    Fitted with the batch-1 and max-load points: small, because engines overlap the host work with the
    GPU step (CUDA graphs, overlap schedulers)."""

    max_batch: int = 2048
    """Most sequences one attention group (a TP group, or one rank under data-parallel attention) runs
    per step: serving engines cap it (TensorRT-LLM max_batch_size, vLLM max_num_seqs, CUDA-graph sizes);
    memory is not the only cap. TensorRT-LLM's default max_batch_size; the fit on the max-load points
    gave 2086."""

    max_num_tokens: int = 8192
    """Most tokens one attention group processes per step (TensorRT-LLM max_num_tokens, vLLM
    max_num_batched_tokens default 8192): the prefill chunk size; TTFT under load counts its chunks."""

    pipeline_hop_latency_s: float = 20e-6
    """Fixed latency of one pipeline-stage hop between scale-up domains, seconds."""

    activation_bytes: int = 2
    """Bytes per activation element exchanged by all-reduces and pipeline hops (BF16)."""

    memory_utilization: float = 0.90
    """Fraction of chip memory the runtime can give to weights + KV; the rest is activations, CUDA
    graphs, fragmentation (vLLM's gpu_memory_utilization default)."""

    min_kv_tokens: int = 8192
    """KV tokens a replica must hold beyond its weights to be worth deploying ("some KV")."""

    max_chips_multiple: int = 8
    """chips_options goes up to this multiple of the minimum chip count (more rarely pays)."""


TUNABLE = ("memory_bandwidth", "compute", "attention_compute", "moe_bandwidth", "moe_half_tokens", "emulated_compute",
           "scaleup_bandwidth", "allreduce_latency_s", "alltoall_latency_s", "layer_latency_s", "moe_layer_latency_s", "step_overhead_s",
           "max_batch", "max_num_tokens", "memory_utilization", "scaleout_bandwidth_gbps")
"""Factors an accelerator's `efficiency:` block (catalog, scenario, calibrate output) may set."""


@dataclass(frozen=True)
class Preset:
    efficiency: Efficiency
    calibrated: bool
    basis: str


HOPPER = Efficiency()
BLACKWELL = replace(HOPPER, compute=0.36, attention_compute=0.17, moe_bandwidth=1.0, moe_layer_latency_s=73e-6)
"""Fitted on the 8 Blackwell points (memory_bandwidth kept at Hopper's: the batch-1 points agree with it).
NVFP4 GEMMs at MLPerf load reach ~36% of the FP4 peak."""
CDNA3 = replace(HOPPER, compute=0.46, attention_compute=0.05, max_batch=1024)
"""Fitted on the 2 MI300X points; engine cap 1024 = vLLM V1's default max_num_seqs on large-memory GPUs
(ROCm deployments run vLLM / SGLang). attention_compute sits at its fit bound: the ROCm wide-EP DeepSeek
point is the only MLA point, so treat it as a loose figure."""
PRESETS: dict[str, Preset] = {
    "nvidia-hopper": Preset(HOPPER, True, "fitted: 25 MLPerf v4.1/v5.0, TensorRT-LLM, SGLang, vLLM and NIM points on H100/H200"),
    "nvidia-blackwell": Preset(BLACKWELL, True, "fitted: MLPerf v5.0/v5.1 and TensorRT-LLM points on B200, SGLang on GB200"),
    "amd-cdna3": Preset(CDNA3, True, "fitted: MLPerf v5.1 Mixtral (vLLM ROCm) and the ROCm wide-EP DeepSeek point on MI300X"),
    "amd-cdna4": Preset(CDNA3, False, "not calibrated: no public MI355X point in shared/data; CDNA3 values"),
    "google-tpu": Preset(HOPPER, False, "not calibrated: no public TPU point in shared/data; Hopper values"),
    "aws-trainium": Preset(HOPPER, False, "not calibrated: no public Trainium point; Hopper values"),
    "generic": Preset(HOPPER, False, "not calibrated: no preset named for this accelerator; Hopper values"),
}
DEFAULT_PRESET = "generic"


def efficiency_for(accelerator: Any, base: Efficiency | None = None) -> tuple[Efficiency, Preset]:
    """The factors an accelerator runs with: its preset (or `generic`), then its own `efficiency` fields.

    `base`, when given, is used as it is (tests, and calibration trying candidate factors); the preset
    still says whether the accelerator is calibrated."""
    block = getattr(accelerator, "efficiency", None)
    name = (getattr(block, "preset", None) if block is not None else None) or DEFAULT_PRESET
    preset = PRESETS[name]
    if base is not None:
        return base, preset
    factors = preset.efficiency
    overrides = {f: getattr(block, f) for f in TUNABLE if getattr(block, f, None) is not None} if block else {}
    if overrides:
        factors = replace(factors, **overrides)
        if not preset.calibrated:
            preset = Preset(factors, True, f"{preset.basis}; set by the accelerator's efficiency fields")
    return factors, preset
