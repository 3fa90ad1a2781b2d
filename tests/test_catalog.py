"""The reference catalog loads into validated scenario objects and keeps the shared data's numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from placement import estimator as est
from placement.catalog import DEFAULT_FOLDER, load_catalog
from placement.errors import InputError
from placement.scenario import Accelerator, Model

ACCELERATOR_IDS = [
    "h100", "h200", "b200", "gb200", "gb300", "b300", "mi300x", "mi325x", "mi355x",
    "tpu-v5e", "tpu-v6e", "tpu-v7", "trainium2", "cerebras-wse3", "groq-lpu", "sn40l",
]
MODEL_IDS = [
    "kimi-k2", "deepseek-v3", "deepseek-r1", "gpt-oss-120b", "gpt-oss-20b", "llama-3.1-8b", "llama-3.1-70b",
    "llama-3.1-405b", "qwen3-235b-a22b", "qwen3-32b", "mixtral-8x7b", "mixtral-8x22b",
]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_default_folder_is_package_data():
    """The catalog ships inside the package (an installed placement resolves `- h200` anywhere);
    inputs/catalog keeps only a pointer, so there is one copy of the data."""
    import placement

    assert Path(str(DEFAULT_FOLDER)) == Path(placement.__file__).resolve().parent / "catalog_data"
    assert (DEFAULT_FOLDER / "README.md").is_file()
    repo = Path(__file__).resolve().parent.parent
    assert sorted(p.name for p in (repo / "inputs" / "catalog").iterdir()) == ["README.md"]
    assert "placement/catalog_data" in (repo / "inputs" / "catalog" / "README.md").read_text()


def test_every_accelerator_and_model_is_there(catalog):
    accelerators, models = catalog
    assert list(accelerators) == ACCELERATOR_IDS
    assert set(MODEL_IDS) <= set(models)
    assert all(isinstance(a, Accelerator) and a.id == key for key, a in accelerators.items())
    assert all(isinstance(m, Model) and m.id == key for key, m in models.items())


def test_accelerator_specs_parsed_from_the_shared_table(catalog):
    accelerators, _ = catalog
    h100 = accelerators["h100"]
    assert (h100.memory_gb, h100.memory_bandwidth_tbps, h100.scaleup_domain, h100.scaleup_bandwidth_gbps) == (80, 3.35, 8, 900)
    assert h100.dense_tflops == {"bf16": 989, "fp8": 1979}
    assert accelerators["b200"].dense_tflops == {"bf16": 2250, "fp8": 4500, "fp4": 9000}  # dense = sparse / 2
    assert accelerators["gb200"].scaleup_domain == 72
    assert accelerators["tpu-v5e"].dense_tflops == {"bf16": 197, "int8": 394}
    assert accelerators["tpu-v7"].memory_gb == pytest.approx(192 * 2**30 / 1e9, abs=0.1)  # 192 GiB
    assert accelerators["trainium2"].memory_gb == pytest.approx(96 * 2**30 / 1e9, abs=0.1)
    assert accelerators["mi355x"].power_kw == 1.4
    assert {a.id for a in accelerators.values() if a.memory_kind == "sram"} == {"cerebras-wse3", "groq-lpu"}
    assert accelerators["groq-lpu"].memory_gb == 0.23


def test_sources_carry_the_uncertainty(catalog):
    accelerators, models = catalog
    for accel in accelerators.values():
        assert accel.source and accel.uncertainty, accel.id
    assert "vendor-claimed" in accelerators["cerebras-wse3"].uncertainty
    assert all(m.source for m in models.values())


def test_csv_keeps_source_and_uncertainty_columns_and_no_prices():
    frame = pd.read_csv(DEFAULT_FOLDER / "accelerators.csv", dtype=str, keep_default_na=False)
    assert {"source", "uncertainty"} <= set(frame.columns)
    assert not [c for c in frame.columns if "price" in c]
    assert "Prices" in (DEFAULT_FOLDER / "README.md").read_text()


# models.csv: kv_KiB_per_token_bf16 (full-attention layers) and the checkpoint sizes.
KV_KIB_BF16 = {
    "kimi-k2": 68.6, "deepseek-v3": 68.6, "gpt-oss-120b": 36.0, "gpt-oss-20b": 24.0, "llama-3.1-8b": 128.0,
    "llama-3.1-70b": 320.0, "llama-3.1-405b": 504.0, "qwen3-235b-a22b": 188.0, "qwen3-32b": 256.0,
    "mixtral-8x7b": 128.0, "mixtral-8x22b": 224.0,
}
WEIGHTS_GB = {
    "deepseek-v3": 671, "llama-3.1-8b": 16.1, "llama-3.1-70b": 141.1, "llama-3.1-405b": 809,
    "gpt-oss-120b": 60.8 * 2**30 / 1e9, "gpt-oss-20b": 12.8 * 2**30 / 1e9, "mixtral-8x7b": 93.4, "qwen3-32b": 65.5,
}


@pytest.mark.parametrize("model_id, kib", sorted(KV_KIB_BF16.items()))
def test_kv_matches_models_csv(catalog, model_id, kib):
    model = catalog[1][model_id]
    assert est.kv_bytes_per_token(model) / 1024 == pytest.approx(kib, abs=0.05)
    assert model.kv_bytes_per_token == est.kv_bytes_per_token(model)


@pytest.mark.parametrize("model_id, gb", sorted(WEIGHTS_GB.items()))
def test_weights_match_models_csv(catalog, model_id, gb):
    assert est.weight_bytes(catalog[1][model_id]) / 1e9 == pytest.approx(gb, rel=0.02)


def test_moe_architecture_reproduces_the_parameter_counts(catalog):
    """Routed experts (3 x hidden x intermediate each) must not exceed the total, and the active split
    must leave a plausible always-active part: a check on the transcribed config fields."""
    for model in catalog[1].values():
        shape = est._moe_shape(model)
        if shape is None:
            continue
        experts, k, layers, per_expert = shape
        routed_total = experts * layers * per_expert / 1e9
        routed_active = k * layers * per_expert / 1e9
        assert 0.85 * model.total_params_b < routed_total < model.total_params_b, model.id
        arch = model.architecture
        if arch.get("intermediate_size_mlp"):
            # Llama 4: dense layers between the MoE layers and a shared expert in each, top-1 routing: the
            # always-active part is most of the active parameters; check it against the architecture
            hidden, layers_all = arch["hidden_size"], arch["num_hidden_layers"]
            attention = layers_all * hidden * arch["head_dim"] * 2 * (arch["num_attention_heads"] + arch["num_key_value_heads"])
            dense = (layers_all - layers) * 3 * hidden * arch["intermediate_size_mlp"]
            shared = layers * per_expert
            embeddings = 2 * arch["vocab_size"] * hidden
            always = (attention + dense + shared + embeddings) / 1e9
            assert model.active_params_b - routed_active == pytest.approx(always, rel=0.05), model.id
            continue
        assert 0 < model.active_params_b - routed_active < 0.5 * model.active_params_b, model.id


def test_yaml_anchors_do_not_alias_models(catalog):
    _, models = catalog
    assert models["deepseek-v3"].architecture == models["deepseek-r1"].architecture
    assert models["deepseek-v3"].architecture is not models["deepseek-r1"].architecture


def test_bad_rows_are_reported_with_row_and_field(tmp_path):
    shutil.copy(DEFAULT_FOLDER / "models.yaml", tmp_path / "models.yaml")
    frame = pd.read_csv(DEFAULT_FOLDER / "accelerators.csv", dtype=str, keep_default_na=False)
    frame.loc[1, "memory_gb"] = "-5"
    frame.loc[2, "memory_kind"] = "dram"
    frame.to_csv(tmp_path / "accelerators.csv", index=False)
    with pytest.raises(InputError) as caught:
        load_catalog(tmp_path)
    problems = caught.value.problems
    assert len(problems) == 2
    assert "row 2 (line 3), memory_gb" in problems[0].field
    assert "row 3 (line 4), memory_kind" in problems[1].field


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as caught:
        load_catalog(tmp_path / "nowhere")
    assert len(caught.value.problems) == 2
