"""The public validation points (shared/data/validation_points.csv and validation_points_2.csv) as
`Point`s the estimator can be held to: every row of both files, with the conditions each row states
(precision, layout, concurrency, lengths, engine settings) and the assumptions where a row is silent,
written next to it. benchmarks/validate_estimator.py prints the table and refits the factors;
tests/test_validation.py holds every point within VALIDATION_FACTOR.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from placement.calibrate import Point
from placement.catalog import load_catalog
from placement.scenario import Model, Speculative

VALIDATION_FACTOR = 1.5
"""Every validated point's estimate lies within this factor of the measurement."""


@dataclass(frozen=True)
class KernelPoint:
    """A microbenchmark row: a fraction of peak the efficiency factors are compared with directly."""

    id: str
    factor: str
    preset: str
    measured: float
    note: str


def _variant(model: Model, suffix: str, weight_bits: float | None = None, kv_bits: int | None = None,
             expert_bits: float | None = None, non_expert_bits: float | None = None, **arch) -> Model:
    """A precision variant of a catalog model. expert_bits/non_expert_bits: MoE checkpoints that quantize
    experts and the rest differently (weight_bits becomes the parameter-weighted average)."""
    from placement import estimator as est

    architecture = dict(model.architecture or {}, **arch)
    update: dict = {"id": f"{model.id}-{suffix}"}
    if kv_bits is not None:
        architecture["kv_bits"] = kv_bits
    if expert_bits is not None:
        experts, _, moe_layers, per_expert = est._moe_shape(model)
        routed = moe_layers * experts * per_expert
        total = model.total_params_b * 1e9
        weight_bits = (routed * expert_bits + (total - routed) * non_expert_bits) / total
        architecture["non_expert_weight_bits"] = non_expert_bits
    if weight_bits is not None:
        update["weight_bits"] = float(weight_bits)
    update["architecture"] = architecture
    return model.model_copy(update=update)


LLAMA2_70B_FP8 = Model(
    id="llama-2-70b-fp8", total_params_b=68.98, active_params_b=68.98, weight_bits=8, max_context_tokens=4096,
    architecture=dict(num_hidden_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                      intermediate_size=28672, vocab_size=32000, kv_bits=8),
    source="Llama-2-70B as MLPerf runs it: Llama 3.1 70B dims with a 32000 vocabulary; FP8 weights and KV (TensorRT-LLM)",
)

MLPERF_LLAMA2_INPUT = 500
"""validation_points.csv gives prompts <= 1024 tokens and ~294 output tokens, not the mean prompt. Compute
bounds it: 8x H200 produce 31,303 output tok/s offline; a mean of 1024 would need 123% of the FP8 peak and
even 100% of peak caps it at ~780; at vidur's 69-76% GEMM MFU the mean is ~400-550."""

MIXTRAL_MLPERF_INPUT = 600
"""Assumed mean prompt of MLPerf's Mixtral mixed set (OpenOrca + GSM8K + MBXP; the summaries give only the
~145 output tokens per sample). Not stated in shared/data: an assumption, like MLPERF_LLAMA2_INPUT."""

LLAMA405_MLPERF_INPUT = 9400
"""Assumed mean prompt of MLPerf's Llama-3.1-405B long-context set (MLCommons describes multi-K-token
prompts from LongBench, RULER, GovReport ...; ~9.4k mean is our reading, not a shared/data figure)."""

LLAMA8B_MLPERF_LENGTHS = (780, 100)
"""Assumed mean prompt / output of MLPerf's Llama-3.1-8B CNN/DailyMail summarization set (articles of
~780 tokens, outputs capped at 128); not stated in shared/data."""

TRTLLM_REQUESTS = 3000
"""The release/1.2 perf-overview rows ran 3000 requests: at most 3000 in flight, split over the attention
ranks (engine max_batch per rank = 3000 / ranks)."""

MTP_ACCEPTANCE = 0.7
"""Per-draft-token acceptance of DeepSeek-R1's MTP heads, from the B200 ablation in validation_points_2.csv
(blog1: no MTP 111, MTP1 198, MTP3 253 tok/s/user): MTP1 / none = 1.78 puts the first token's acceptance
near 0.85 (DeepSeek-V3 report: 85-90%); MTP3 / none = 2.28, with ~15% verify and draft overhead, means
~2.6 tokens per step: (1 - a^4) / (1 - a) = 2.6 gives a = 0.7 averaged over the three."""

EAGLE3_DRAFT_B = 0.5
"""Active parameters of the Llama-4 Maverick Eagle3 draft, billions: one decoder layer at hidden 5120 (~0.3B)
plus its fusion layer and a reduced draft vocabulary head; an estimate from the EAGLE-3 design."""

EAGLE3_ACCEPTANCE = 0.85
"""Eagle3 draft on Llama-4 Maverick: acceptance not in the source. Assumed 0.85 per token (~3.2 tokens per
3-deep verify step, the range the EAGLE-3 paper reports for chat data); an assumption, not a fit."""


@lru_cache(maxsize=1)
def _catalog():
    return load_catalog()


def kernel_points() -> list[KernelPoint]:
    """V5 of validation_points.csv: vidur's per-operator H100 timings of Llama-2-70B linear layers."""
    note = "microsoft/vidur h100 Llama-2-70b mlp.csv: MBU 86% (TP1) .. 73% (TP8); MFU 69-76% at >=2k tokens"
    return [KernelPoint("V5 (MBU)", "memory_bandwidth", "nvidia-hopper", (0.86 + 0.73) / 2, note),
            KernelPoint("V5 (MFU)", "compute", "nvidia-hopper", (0.69 + 0.76) / 2, note)]


def validation_points() -> list[Point]:
    accelerators, models = _catalog()
    h100, h200, b200 = accelerators["h100"], accelerators["h200"], accelerators["b200"]
    gb200, mi300x = accelerators["gb200"], accelerators["mi300x"]
    mixtral_fp8 = _variant(models["mixtral-8x7b"], "fp8", weight_bits=8, kv_bits=8)
    mixtral_fp4 = _variant(models["mixtral-8x7b"], "nvfp4", weight_bits=4.5, kv_bits=8)
    r1 = models["deepseek-r1"]
    r1_fp8kv = _variant(r1, "fp8kv", kv_bits=8)
    r1_fp4 = _variant(r1, "nvfp4", expert_bits=4.5, non_expert_bits=8, kv_bits=8)
    r1_fp4_bf16attn = _variant(r1, "nvfp4-bf16attn", expert_bits=4.5, non_expert_bits=16)
    r1_mtp = lambda m: m.model_copy(update={"id": m.id + "-mtp3", "speculative": Speculative(  # noqa: E731
        method="mtp", draft_tokens=3, acceptance=MTP_ACCEPTANCE)})
    qwen_fp8 = _variant(models["qwen3-235b-a22b"], "fp8", weight_bits=8)
    maverick = models["llama-4-maverick-fp8"]
    maverick_eagle = maverick.model_copy(update={"id": maverick.id + "-eagle3", "speculative": Speculative(
        method="draft", draft_tokens=3, acceptance=EAGLE3_ACCEPTANCE, draft_params_b=EAGLE3_DRAFT_B)})
    llama405_fp8 = _variant(models["llama-3.1-405b-fp8"], "fp8kv", kv_bits=8)
    llama405_fp4 = _variant(models["llama-3.1-405b"], "nvfp4", weight_bits=4.5, kv_bits=8)
    llama8_fp4 = _variant(models["llama-3.1-8b"], "nvfp4", weight_bits=4.5, kv_bits=8)
    llama8_fp8 = _variant(models["llama-3.1-8b"], "fp8", weight_bits=8, kv_bits=8)
    llama70_fp8 = _variant(models["llama-3.1-70b"], "fp8", weight_bits=8, kv_bits=8)
    any_size = (1, 2, 4, 8)
    tput = "output_tokens_per_s_per_chip"
    speed = "output_tokens_per_s_per_user"
    return [
        # ---- validation_points.csv: MLPerf Inference v4.1, Llama-2-70B, 8 GPUs, best replica size
        Point("V1a", LLAMA2_70B_FP8, h100, tput, 24524.9 / 8, MLPERF_LLAMA2_INPUT, 294, 8, chips_options=any_size,
              note="offline; mean prompt assumed (MLPERF_LLAMA2_INPUT)"),
        Point("V1b", LLAMA2_70B_FP8, h100, tput, 21605.8 / 8, MLPERF_LLAMA2_INPUT, 294, 8, chips_options=any_size,
              per_user_floor=6.5, max_ttft_s=2.0, note="server: observed mean TPOT 155 ms -> >= 6.5 tok/s/user, TTFT <= 2 s"),
        Point("V2a", LLAMA2_70B_FP8, h200, tput, 31302.7 / 8, MLPERF_LLAMA2_INPUT, 294, 8, chips_options=any_size,
              note="offline"),
        Point("V2b", LLAMA2_70B_FP8, h200, tput, 29228.2 / 8, MLPERF_LLAMA2_INPUT, 294, 8, chips_options=any_size,
              per_user_floor=8.1, max_ttft_s=2.0, note="server: mean TPOT 123 ms -> >= 8.1 tok/s/user"),
        # ---- validation_points_2.csv
        Point("mixtral_mlperf41_h100x8_offline", mixtral_fp8, h100, tput, 6552.0, MIXTRAL_MLPERF_INPUT, 146, 8,
              chips_options=any_size, note="FP8 (+FP8 KV assumed); replica size not stated: best of 1-8; prompt assumed"),
        Point("mixtral_mlperf50_h200x8_offline", mixtral_fp8, h200, tput, 7828.7, MIXTRAL_MLPERF_INPUT, 145, 1,
              layout="tp", engine={"max_batch": 3072, "max_num_tokens": 9216},
              note="TP1 x 8, gpu_batch_size 3072, max_num_tokens 9216 (stated config); prompt assumed"),
        Point("mixtral_mlperf50_b200x8_offline", mixtral_fp4, b200, tput, 16018.5, MIXTRAL_MLPERF_INPUT, 145, 1,
              layout="tp", engine={"max_batch": 6144, "max_num_tokens": 14336},
              note="NVFP4 + FP8 KV, TP1 x 8, batch 6144, max_num_tokens 14336 (stated); prompt assumed"),
        Point("mixtral_mlperf51_mi300xx8_offline", mixtral_fp8, mi300x, tput, 6627.2, MIXTRAL_MLPERF_INPUT, 130, 8,
              chips_options=any_size, note="vLLM ROCm FP8 + FP8 KV; replica size not stated: best of 1-8; prompt assumed"),
        Point("mixtral_trtllm017_h100_tp1_1k1k", mixtral_fp8, h100, tput, 6868.52, 1000, 1000, 1, layout="tp",
              note="max load, TP1 FP8"),
        Point("mixtral_trtllm017_h200_tp1_1k1k", mixtral_fp8, h200, tput, 10371.36, 1000, 1000, 1, layout="tp",
              note="max load, TP1 FP8"),
        Point("dsr1_trtllm_b200x8_maxthr_fp8kv", r1_fp4, b200, tput, 5393.2755, 1042, 2048, 8, layout="dep",
              concurrency=7168, engine={"max_batch": 896, "max_num_tokens": 2048},
              note="DEP8, NVFP4 experts + FP8 rest and KV, concurrency 7168 (896 per rank), max_num_tokens 2048"),
        Point("dsr1_trtllm_h200x8_maxthr", r1, h200, tput, 1436.1584, 1024, 2048, 8, layout="dep", concurrency=1024,
              engine={"max_batch": 128, "max_num_tokens": 1151},
              note="DEP8 FP8, BF16 KV, concurrency 1024 (128 per rank), max_num_tokens 1151"),
        Point("dsr1_0528_trtllm_h200_dep8_1k1k", r1_fp8kv, h200, tput, 1724, 1024, 1024, 8, layout="dep",
              engine={"max_batch": TRTLLM_REQUESTS // 8},
              note="DEP8 FP8 + FP8 KV, max load"),
        Point("dsv3_sglang_h100x72_decode_ep72", r1, h100, tput, 2785.25, 2000, 1, 72, layout="dep",
              concurrency=256 * 72, decode_only=True, engine={"max_batch": 256},
              note="decode only (prefill on other nodes), DEP72 over 9 nodes (all-to-all over InfiniBand), batch 256 "
                   "per GPU, KV length 2000, BF16 KV"),
        Point("ds_sglang_gb200_decode", r1, gb200, tput, 7583, 2000, 1, 48, layout="dep", decode_only=True,
              note="decode only, DEP48 inside one NVL72 domain, KV length 2000; batch not stated: max that runs"),
        Point("ds_vllm_h200_wideep_decode", r1, h200, tput, 2200, 2000, 1, 16, layout="dep", decode_only=True,
              note="WEAK: EP size, lengths and batch not stated; assumed decode-only DEP16 over 2 nodes, 2000-token "
                   "KV, max batch"),
        Point("ds_rocm_mi300x_decode_ep16", _variant(r1, "fp8kv-rocm", kv_bits=8), mi300x, tput, 1550, 2000, 100, 16,
              layout="dep", decode_only=True,
              note="decode nodes of a 2P2D deployment: DEP16 over 2 nodes, FP8 + FP8 KV, 2000/100; batch not stated"),
        Point("dsr1_trtllm_b200x8_minlat_mtp3", r1_mtp(r1_fp4_bf16attn), b200, speed, 274.7188, 1024, 2048, 8,
              layout="tp", concurrency=1, note="batch 1, TP8, NVFP4 MoE + BF16 attention, MTP 3 (acceptance assumed "
                                               "MTP_ACCEPTANCE)"),
        Point("dsr1_trtllm_b200x8_minlat_nomtp", r1_fp4_bf16attn, b200, speed, 111, 1024, 2048, 8, layout="tp",
              concurrency=1, note="batch 1, TP8, no speculation"),
        Point("dsr1_trtllm_h200x8_minlat_mtp3", r1_mtp(r1), h200, speed, 158.1196, 1024, 2048, 8, layout="tp",
              concurrency=1, note="batch 1, TP8 FP8, MTP 3"),
        Point("gptoss120b_trtllm_h200_dep2_1k1k", models["gpt-oss-120b"], h200, tput, 6391, 1024, 1024, 2,
              layout="dep", engine={"max_batch": TRTLLM_REQUESTS // 2},
              note="DEP2, MXFP4 experts, max load"),
        Point("gptoss20b_trtllm_h200_tp1_1k1k", models["gpt-oss-20b"], h200, tput, 14719, 1024, 1024, 1, layout="tp",
              engine={"max_batch": TRTLLM_REQUESTS // 1},
              note="TP1, max load"),
        Point("gptoss120b_sglang_bs1_tp1", models["gpt-oss-120b"], h100, speed, 211.49, 1024, 1024, 1, layout="tp",
              concurrency=1, note="batch 1; WEAK: H100 or H200 not stated; H100 used (the slower: an estimate that "
                                  "is high on H100 is higher on H200; H200 figure in the table note)"),
        Point("qwen3_235b_trtllm_h200_dep4_1k1k", qwen_fp8, h200, tput, 3494, 1024, 1024, 4, layout="dep",
              engine={"max_batch": TRTLLM_REQUESTS // 4},
              note="DEP4 FP8, max load"),
        Point("qwen3_235b_trtllm_h100_tp8_1k1k", qwen_fp8, h100, tput, 1862.2, 1000, 1000, 8, layout="tp",
              note="TP8 FP8, max load"),
        Point("llama4_maverick_trtllm_h200_tp8_1k1k", maverick, h200, tput, 3972.8, 1000, 1000, 8, layout="tp",
              note="TP8 FP8, max load"),
        Point("llama4_maverick_trtllm_h100_tp8_1k1k", maverick, h100, tput, 1209.6, 1000, 1000, 8, layout="tp",
              note="TP8 FP8, max load (400 GB of weights leave little KV)"),
        Point("llama4_maverick_b200x8_minlat_eagle3", maverick_eagle, b200, speed, 1000, 1000, 1000, 8, layout="tp",
              concurrency=1, note="batch 1, TP8, Eagle3 draft of 3 (draft size and acceptance assumed); measured is a lower "
                                  "bound ('over 1000'); lengths not stated: 1000/1000 assumed"),
        Point("llama31_405b_mlperf50_h200x8_offline", llama405_fp8, h200, tput, 70.1, LLAMA405_MLPERF_INPUT, 649, 8,
              chips_options=(4, 8), note="FP8 + FP8 KV; replica size not stated: best of 4, 8; prompt assumed"),
        Point("llama31_405b_mlperf51_b200x8_offline", llama405_fp4, b200, tput, 203.0, LLAMA405_MLPERF_INPUT, 616, 8,
              chips_options=(2, 4, 8), note="NVFP4 + FP8 KV; best of 2-8; prompt assumed"),
        Point("llama31_8b_mlperf51_b200x8_offline", llama8_fp4, b200, tput, 17094.0, *LLAMA8B_MLPERF_LENGTHS, 1,
              chips_options=(1, 2), note="NVFP4 + FP8 KV; lengths assumed (LLAMA8B_MLPERF_LENGTHS)"),
        Point("llama31_8b_trtllm017_h100_tp1_1k1k", llama8_fp8, h100, tput, 15244.78, 1000, 1000, 1, layout="tp",
              note="TP1 FP8, max load"),
        Point("llama33_70b_nim_h100x2_tp2_conc1", llama70_fp8, h100, speed, 52.85, 500, 2000, 2, layout="tp",
              concurrency=1, note="concurrency 1, TP2 FP8 (+FP8 KV)"),
        Point("llama33_70b_nim_h100x2_tp2_conc1 (TTFT)", llama70_fp8, h100, "ttft_s", 0.04777, 500, 2000, 2,
              layout="tp", concurrency=1, note="same row: TTFT 47.77 ms at 500 input tokens"),
        Point("llama33_70b_nim_h100x2_tp2_conc1 (TTFT 5k)", llama70_fp8, h100, "ttft_s", 0.40677, 5000, 500, 2,
              layout="tp", concurrency=1, note="same row's conditions: 5000/500 at concurrency 1, TTFT 406.77 ms"),
    ]
