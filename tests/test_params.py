"""The declarative parameter schema: conversion, limits and the messages users see."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from penchant.errors import PipelineError
from penchant.params import Param, mask, parse_duration, validate

SCHEMA = (
    Param("epochs", "int", 10, min=1, max=100, help="passes"),
    Param("rate", "float", 0.5, min=0, help="a rate"),
    Param("mode", "str", "a", choices=("a", "b"), help="mode"),
    Param("flag", "bool", False, help="a flag"),
    Param("window", "duration", "90d", help="window"),
    Param("ks", "list", [10], items="int", min=1, help="list lengths"),
    Param("weights", "table", {}, items="float", help="weights"),
    Param("password", "str", None, secret=True, help="secret"),
    Param("path", "path", required=True, help="a file"),
)


def test_defaults_fill_and_ints_become_floats() -> None:
    values = validate(SCHEMA, {"path": "x.csv", "rate": 1}, "f.toml [model]")
    assert values.epochs == 10 and values.rate == 1.0 and isinstance(values.rate, float)
    assert values.weights == {} and values.password is None


@pytest.mark.parametrize("values, fragment", [
    ({"epochs": "ten"}, "key 'epochs': expected an integer, got 'ten'"),
    ({"epochs": 0}, "key 'epochs': 0 is below the minimum 1"),
    ({"epochs": 101}, "key 'epochs': 101 is above the maximum 100"),
    ({"epochs": True}, "key 'epochs': expected an integer"),
    ({"mode": "c"}, "key 'mode': 'c' is not one of 'a', 'b'"),
    ({"flag": "yes"}, "key 'flag': expected true or false"),
    ({"window": "3 months"}, "key 'window': '3 months' is not a duration"),
    ({"ks": [10, 0]}, "key 'ks': 0 is below the minimum 1"),
    ({"weights": {"view": "x"}}, "key 'weights': expected a number"),
    ({"epoch": 3}, "unknown key 'epoch'; allowed keys: epochs, flag"),
])
def test_errors_name_file_table_key_and_what_is_allowed(values: dict, fragment: str) -> None:
    with pytest.raises(PipelineError) as info:
        validate(SCHEMA, {"path": "x", **values}, "shop.toml [model]")
    assert "shop.toml [model]" in str(info.value)
    assert fragment in str(info.value)


def test_missing_required_and_every_problem_reported_at_once() -> None:
    with pytest.raises(PipelineError) as info:
        validate(SCHEMA, {"epochs": 0, "mode": "z"}, "p.toml [source]")
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any("key 'path' is required" in line for line in lines)


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match="default 'x' is invalid"):
        Param("n", "int", "x")
    with pytest.raises(ValueError, match="lower_snake_case"):
        Param("Bad-Name", "int", 1)
    with pytest.raises(ValueError, match="needs an items type"):
        Param("xs", "list", [])
    assert Param("n", "int", 1).contract_problems() == []


def test_durations() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(days=14)
    with pytest.raises(ValueError):
        parse_duration("3mo")


def test_timepoint_takes_a_quantile_or_a_date() -> None:
    tp = Param("cutoff", "timepoint", 0.8)
    assert tp.convert(0.5) == 0.5
    assert tp.convert("2024-06-01") == "2024-06-01"
    assert tp.convert(date(2024, 6, 1)) == "2024-06-01", "a TOML date, as --set reads one"
    for bad in (1.5, 0, "soon", True):
        with pytest.raises(ValueError):
            tp.convert(bad)


def test_mask_hides_literal_secrets_but_keeps_env_references() -> None:
    assert mask(SCHEMA, {"password": "hunter2", "epochs": 3}) == {"password": "***",
                                                                  "epochs": 3}
    assert mask(SCHEMA, {"password": "${env:DB_PW}"}) == {"password": "${env:DB_PW}"}
