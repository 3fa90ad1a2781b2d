"""Pool kinds, one module each (as GridPath keeps one module per capacity type).

Each module owns its kind's rules: the price a running replica pays, what caps the chips in a slice and in
a period, the variables and rows it adds, and how its cost is counted from a plan's rows. The formulation
and the extraction call them through `KINDS`; nothing else spells out a kind's rules.
"""

from __future__ import annotations

from placement.capacity_types import on_demand, prepaid, reserved, spot

KINDS = {"prepaid": prepaid, "reserved": reserved, "on_demand": on_demand, "spot": spot}


def module(kind: str):
    return KINDS[kind]
