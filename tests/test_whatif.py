"""What-if edits return new validated scenarios and move the cost the way they should."""

from __future__ import annotations

import pytest

from placement.api import solve_scenario
from placement.errors import InputError
from placement.scenario import load_scenario
from placement.whatif import add_chips, scale_demand, scale_prices
from tests.helpers import write_scenario
from tests.test_formulation import CASES


@pytest.fixture
def base(tmp_path):
    spec, _ = CASES["prepaid_used_first"]  # 5 replicas: 2 prepaid + 3 on demand at 2.0 = 6.0
    return load_scenario(write_scenario(tmp_path, spec))


def _cost(loaded):
    return solve_scenario(loaded, baselines=False, explain=False).plan["objective"]["value"]


def test_what_ifs(base):
    assert _cost(base) == pytest.approx(6.0)
    assert _cost(add_chips(base, "a-pre", 1)) == pytest.approx(4.0)
    assert _cost(scale_prices(base, 0.5)) == pytest.approx(3.0)
    assert _cost(scale_demand(base, 2.0)) == pytest.approx(16.0)
    assert base.scenario.pools[0].max_chips == 2  # the original is untouched


def test_edits_are_revalidated_and_rehashed(base):
    edited = scale_demand(base, 2.0)
    assert edited.sha256 != base.sha256
    with pytest.raises(InputError, match="greater than or equal to 0"):  # bad input: exit 3
        scale_demand(base, -1.0)
    with pytest.raises(InputError, match="no pool 'nope'"):
        add_chips(base, "nope", 1)
