"""The estimator's mixture-of-experts, speculative, engine-cap, TTFT-under-load, precision and band terms,
each against hand-computed values on a toy model and chip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from placement import estimator as est
from placement.catalog import load_catalog
from placement.efficiency import HOPPER, PRESETS, efficiency_for
from placement.scenario import Accelerator, AcceleratorEfficiency, Model, Speculative

ACCELERATORS, MODELS = load_catalog()

# 10 layers, hidden 1000, 10 heads x 100 (MHA), 8 experts of 3 x 1000 x 1000, top-2, FP8 weights.
# routed: 10 x 8 x 3e6 = 2.4e8; attention: 10 x 1000 x 100 x (2 x 10 + 2 x 10) = 4e7; embeddings 2e7.
TOY_MOE = Model(
    id="toy-moe", total_params_b=0.3, active_params_b=0.12, weight_bits=8,
    architecture=dict(num_hidden_layers=10, hidden_size=1000, num_attention_heads=10, num_key_value_heads=10,
                      head_dim=100, num_local_experts=8, num_experts_per_tok=2, intermediate_size=1000),
)
TOY_CHIP = Accelerator(id="toy-chip", memory_gb=100, memory_bandwidth_tbps=1, dense_tflops={"fp8": 100}, scaleup_domain=8,
                       scaleup_bandwidth_gbps=100)
IDEAL = est.Efficiency(
    memory_bandwidth=1, compute=1, attention_compute=1, moe_bandwidth=1, moe_half_tokens=0, emulated_compute=1,
    scaleup_bandwidth=1, allreduce_latency_s=0, alltoall_latency_s=0, layer_latency_s=0, moe_layer_latency_s=0,
    step_overhead_s=0, memory_utilization=1,
)


def lengths(*pairs):
    return pd.DataFrame(pairs, columns=["input_tokens", "output_tokens"])


# ---- grouped GEMMs and tokens per expert

def test_grouped_gemm_efficiency_is_half_at_the_half_point():
    eff = replace(HOPPER, moe_half_tokens=64)
    assert est.grouped_gemm_efficiency([0, 64, 192], eff).tolist() == pytest.approx([0, 0.5, 0.75])
    assert est.grouped_gemm_efficiency(5, replace(HOPPER, moe_half_tokens=0)) == 1  # switched off


def test_tokens_per_expert_counts_touched_experts():
    # Mixtral, 4 tokens x top-2 over 8 experts: 8 (1 - 0.75^4) = 5.46875 experts touched
    assert float(est.tokens_per_expert(MODELS["mixtral-8x7b"], 4)) == pytest.approx(8 / 5.46875)
    # a big batch touches all experts: batch x k / E
    assert float(est.tokens_per_expert(MODELS["deepseek-r1"], 4096)) == pytest.approx(4096 * 8 / 256)


def test_slow_grouped_gemms_slow_compute_bound_decode():
    # context 1: KV is tiny, 4096 tokens x 2.4e8 FLOPs take ~10 ms against ~0.5 ms of reads (compute-bound)
    fast = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 1, 4096, 1, IDEAL))
    slow = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 1, 4096, 1, replace(IDEAL, moe_half_tokens=1024)))
    # 4096 tokens x 2 / 8 experts = 1024 tokens per expert: expert FLOPs take twice as long
    expert_flops = 4096 * 2 * 10 * 2 * 3e6
    assert slow - fast == pytest.approx(expert_flops / 100e12, rel=1e-6)


# ---- data-parallel attention + expert parallelism

def test_attention_bytes_gqa_by_hand():
    assert est.attention_bytes(TOY_MOE) == 10 * 1000 * 100 * 40 * 1
    # Llama-3.1-70B: 80 x 8192 x 128 x (2 x 64 + 2 x 8) x 2 bytes
    assert est.attention_bytes(MODELS["llama-3.1-70b"]) == 80 * 8192 * 128 * 144 * 2


def test_dep_decode_step_by_hand():
    # batch 8 over 2 ranks at context 100. Routed experts touched: 8 (1 - 0.75^8) = 7.1991 -> 10 x 3e6 x 7.1991 B,
    # half per rank. Each rank: all attention 4e7 + half the other always-active 2e7 + its 4 sequences' KV
    # (4 x 100 tokens x 40,000 B). At 1 TB/s that is memory-bound. All-to-all: 4 tokens x 2 experts x 1000
    # x (1 + 2) B x 1/2 remote over 100 GB/s, 10 MoE layers.
    layout = est.Layout(2, 1, 2, dep=True)
    routed = 10 * 3e6 * 8 * (1 - 0.75 ** 8)
    memory = (4e7 + 1e7 + 4 * 100 * 40_000 + routed / 2) / 1e12
    exchange = 10 * 4 * 2 * 1000 * 3 * 0.5 / 100e9
    step = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 2, 8, 100, IDEAL, layout))
    assert step == pytest.approx(memory + exchange, rel=1e-9)


def test_alltoall_latency_and_scaleout():
    layout = est.Layout(2, 1, 2, dep=True)
    eff = replace(IDEAL, alltoall_latency_s=15e-6)
    # one token: 2 x 1000 x 3 B x 1/2 = 3000 B over 100 GB/s + dispatch and combine latencies, 10 layers
    assert float(est.alltoall_time(TOY_MOE, 1, layout, TOY_CHIP, eff)) == pytest.approx(10 * (3000 / 100e9 + 30e-6))
    wide = est.Layout(16, 1, 16, dep=True)  # beyond the 8-chip domain: over the NIC, 50 GB/s x 0.8
    per_token = 2 * 1000 * 3 * 15 / 16
    assert float(est.alltoall_time(TOY_MOE, 1, wide, TOY_CHIP, IDEAL)) == pytest.approx(10 * per_token / 40e9)


def test_wide_ep_overlaps_the_exchange_with_compute():
    wide = est.Layout(16, 1, 16, dep=True)
    step = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 16, 1600, 100, IDEAL, wide))
    exchange = float(est.alltoall_time(TOY_MOE, 100, wide, TOY_CHIP, IDEAL))
    # per rank: all attention 4e7 + 2e7 / 16 + 100 sequences x 4e6 B of KV + all 8 experts 2.4e8 / 16
    memory = (4e7 + 2e7 / 16 + 100 * 4e6 + 2.4e8 / 16) / 1e12
    assert exchange == pytest.approx(10 * 100 * 2 * 1000 * 3 * 15 / 16 / 40e9) and exchange < memory
    assert step == pytest.approx(memory)  # the 0.14 ms exchange hides behind 0.46 ms of reads, not added


def test_dep_layout_offered_for_moe_only():
    assert [l.dep for l in est.layouts_for(TOY_MOE, 4, TOY_CHIP)] == [False, True]
    assert [l.dep for l in est.layouts_for(MODELS["llama-3.1-70b"], 4, TOY_CHIP)] == [False]
    assert [l.dep for l in est.layouts_for(TOY_MOE, 1, TOY_CHIP)] == [False]


# ---- fixed latencies

def test_fixed_latency_per_layer_per_moe_layer_per_step():
    eff = replace(IDEAL, layer_latency_s=20e-6, moe_layer_latency_s=50e-6, step_overhead_s=1e-3)
    assert est.fixed_latency(TOY_MOE, eff) == pytest.approx(10 * 20e-6 + 10 * 50e-6 + 1e-3)
    dense = MODELS["llama-3.1-8b"]
    assert est.fixed_latency(dense, eff) == pytest.approx(32 * 20e-6 + 1e-3)  # the step overhead does not scale


# ---- engine caps

def test_concurrency_capped_by_engine_not_only_memory():
    eff = replace(IDEAL, max_batch=64, max_num_tokens=8192)
    tp = est.tp_layout(1, TOY_CHIP)
    # 1e12 B of KV room / 4e6 B per sequence = 250,000 fit; the engine runs 64
    assert int(est.max_concurrency(TOY_MOE, tp, 1e12, 100, eff)) == 64
    dep = est.Layout(4, 1, 4, dep=True)
    assert int(est.max_concurrency(TOY_MOE, dep, 1e12, 100, eff)) == 4 * 64  # a cap per attention rank
    assert int(est.max_concurrency(TOY_MOE, tp, 4e6 * 10, 100, eff)) == 10  # memory binds
    spec = TOY_MOE.model_copy(update={"speculative": Speculative(method="mtp", draft_tokens=3, acceptance=0.7)})
    small = replace(eff, max_num_tokens=100)
    assert int(est.max_concurrency(spec, tp, 1e12, 100, small)) == 25  # 4 tokens per sequence per step


# ---- TTFT under load

def test_ttft_under_load_by_hand():
    tp = est.tp_layout(1, TOY_CHIP)
    eff = replace(IDEAL, max_num_tokens=1000)
    # 2000-token prompt, batch 200: 800 prompt tokens fit a step -> 3 chunks x 10 ms step + 0.1 s of own prefill;
    # prefill utilization 0.5 -> M/D/1 wait 0.5 / (2 x 0.5) x 0.1 s
    ttft = float(est.ttft_under_load(0.05, 0.1, 0.01, 5.0, 2000, 200, tp, eff))
    assert ttft == pytest.approx(3 * 0.01 + 0.1 + 0.05)
    # an idle replica: the lone-prompt latency
    assert float(est.ttft_under_load(0.2, 0.1, 0.01, 0.0, 500, 1, tp, eff)) == pytest.approx(0.2)


def test_busy_replica_has_longer_ttft_than_idle():
    rows = est.estimate_profile(MODELS["llama-3.1-70b"], ACCELERATORS["h200"], lengths((8000, 500)), chips=[4])
    assert rows.ttft_s.is_monotonic_increasing and rows.ttft_s.iloc[-1] > 1.5 * rows.ttft_s.iloc[0]


# ---- speculative decoding

def test_expected_accepted_tokens():
    assert est.expected_accepted_tokens(3, 0.7) == pytest.approx(1 + 0.7 + 0.49 + 0.343)
    assert est.expected_accepted_tokens(3, 1.0) == 4
    assert est.expected_accepted_tokens(1, 0.5) == pytest.approx(1.5)


def test_speculative_token_time_by_hand():
    spec = TOY_MOE.model_copy(update={"speculative": Speculative(method="mtp", draft_tokens=3, acceptance=0.7)})
    tp = est.tp_layout(1, TOY_CHIP)
    verify = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 1, 1, 100, IDEAL, tp, tokens_per_sequence=4))
    # MTP draft pass: one layer's share of the active weights (1.2e8 / 10 B at 1 TB/s)
    draft = float(est.draft_step_time(spec, TOY_CHIP, tp, 1, IDEAL))
    assert draft == pytest.approx(1.2e7 / 1e12)
    per_token, gained = est.token_step_time(spec, TOY_CHIP, tp, 1, 100, IDEAL)
    assert gained == pytest.approx(2.533)
    assert float(per_token) == pytest.approx((verify + 3 * draft) / 2.533)
    plain, one = est.token_step_time(TOY_MOE, TOY_CHIP, tp, 1, 100, IDEAL)
    assert one == 1 and float(plain) > float(per_token)


def test_verify_step_reads_more_experts_not_more_kv():
    # 4 tokens per sequence touch 8 (1 - 0.75^4) experts instead of 2
    one = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 1, 1, 100, IDEAL))
    four = float(est.decode_step_time(TOY_MOE, TOY_CHIP, 1, 1, 100, IDEAL, tokens_per_sequence=4))
    extra = 10 * 3e6 * (8 * (1 - 0.75 ** 4) - 2) / 1e12
    assert four - one == pytest.approx(extra)


def test_speculative_model_raises_per_user_speed_in_the_profile():
    base = MODELS["deepseek-r1"]
    spec = base.model_copy(update={"speculative": Speculative(method="mtp", draft_tokens=3, acceptance=0.7)})
    h200 = ACCELERATORS["h200"]
    plain = est.estimate_profile(base, h200, lengths((1024, 2048)), chips=[8])
    fast = est.estimate_profile(spec, h200, lengths((1024, 2048)), chips=[8])
    assert fast.output_tokens_per_s_per_user.max() > 1.8 * plain.output_tokens_per_s_per_user.max()
    assert "mtp speculative x3" in fast.note.iloc[0]


def test_draft_model_needs_its_size():
    with pytest.raises(ValueError, match="draft_params_b"):
        Speculative(method="draft", draft_tokens=2, acceptance=0.6)


# ---- precision: formats the chip lacks

def test_fp4_weights_on_hopper_run_as_weight_only_quantization():
    h200 = ACCELERATORS["h200"]
    assert est._peak_for_bits(h200, 4.25, HOPPER) == pytest.approx(989e12 * 0.68 * HOPPER.emulated_compute)
    assert est._peak_for_bits(h200, 8, HOPPER) == pytest.approx(1979e12 * 0.68)
    assert est._peak_for_bits(ACCELERATORS["b200"], 4.5, HOPPER) == pytest.approx(9000e12 * 0.68)


def test_decode_attention_at_its_own_efficiency():
    attention, dense, expert = est.achieved_peaks(MODELS["deepseek-r1"], ACCELERATORS["h200"], HOPPER)
    assert attention == pytest.approx(989e12 * HOPPER.attention_compute)
    assert dense == expert == pytest.approx(1979e12 * 0.68)
    prefill_attention, _, _ = est.achieved_peaks(MODELS["deepseek-r1"], ACCELERATORS["h200"], HOPPER, decode=False)
    assert prefill_attention == pytest.approx(989e12 * 0.68)


# ---- per-vendor efficiency

def test_catalog_accelerators_carry_their_preset():
    assert efficiency_for(ACCELERATORS["h200"])[0] == PRESETS["nvidia-hopper"].efficiency
    assert efficiency_for(ACCELERATORS["b200"])[0] == PRESETS["nvidia-blackwell"].efficiency
    assert efficiency_for(ACCELERATORS["mi300x"])[0] == PRESETS["amd-cdna3"].efficiency
    assert not efficiency_for(ACCELERATORS["mi355x"])[1].calibrated
    assert not efficiency_for(TOY_CHIP)[1].calibrated  # no preset: generic, flagged


def test_accelerator_fields_override_the_preset():
    chip = ACCELERATORS["h200"].model_copy(update={"efficiency": AcceleratorEfficiency(preset="nvidia-hopper",
                                                                                     memory_bandwidth=0.5)})
    factors, _ = efficiency_for(chip)
    assert factors.memory_bandwidth == 0.5 and factors.compute == PRESETS["nvidia-hopper"].efficiency.compute
    with pytest.raises(ValueError, match="unknown efficiency preset"):
        AcceleratorEfficiency(preset="nvidia-volta")


def test_uncalibrated_accelerators_get_wider_bands_and_a_note():
    bare = Accelerator(id="bare", memory_gb=141, memory_bandwidth_tbps=4.8, dense_tflops={"bf16": 989, "fp8": 1979},
                       scaleup_bandwidth_gbps=900)
    rows = est.estimate_profile(MODELS["llama-3.1-8b"], bare, lengths((1000, 200)), chips=[1])
    assert rows.note.str.contains("not calibrated").all()
    w = est.UNCALIBRATED_WIDENING
    low = est.CALIBRATED_BANDS.throughput[0] / w
    assert np.allclose(rows.requests_per_s_low, rows.requests_per_s * low)


# ---- bands

def test_every_estimated_row_has_bands_around_the_central_value():
    rows = est.estimate_profile(MODELS["gpt-oss-120b"], ACCELERATORS["h200"], lengths((2000, 500)))
    served = rows[rows.requests_per_s > 0]
    lo, hi = est.CALIBRATED_BANDS.throughput
    assert np.allclose(served.requests_per_s_low, served.requests_per_s * lo)
    assert np.allclose(served.requests_per_s_high, served.requests_per_s * hi)
    assert (served.output_tokens_per_s_per_user_low < served.output_tokens_per_s_per_user).all()
    assert (served.ttft_s_high > served.ttft_s).all()
