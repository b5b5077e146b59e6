"""The demo shop: its files keep their schema, it is reproducible, and the interest dynamics
it claims (seasons, life stage, drift) are measurable in the events, not just in the truth."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from penchant import demo_shop
from penchant.demo_shop import generate
from penchant.errors import PenchantError

SMALL = {"users": 500, "items": 150, "months": 12, "seed": 3, "start": "2024-01-01"}
START, END = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("shop"), **SMALL)


@pytest.fixture(scope="module")
def views(shop: dict[str, Path]) -> pd.DataFrame:
    """Views with their category and calendar month, which every dynamics check counts."""
    events = pd.read_csv(shop["events"])
    items = pd.read_csv(shop["items"])
    out = events[events["event_type"] == "view"].merge(items[["item_id", "category"]])
    time = pd.to_datetime(out["timestamp"], unit="s", utc=True)
    out["month"] = (time.dt.year - 2024) * 12 + time.dt.month - 1
    out["day"] = time.dt.floor("D")
    return out


def test_returns_every_file(shop: dict[str, Path]) -> None:
    assert set(shop) == {"events", "items", "users", "interests", "readme"}
    assert all(path.is_file() for path in shop.values())
    assert not list(shop["events"].parent.glob(".*.tmp")), "temporary files left behind"


def test_events_schema(shop: dict[str, Path]) -> None:
    events = pd.read_csv(shop["events"])
    assert list(events.columns) == ["user_id", "item_id", "timestamp", "event_type"]
    assert events["timestamp"].dtype == np.int64
    assert events["user_id"].str.fullmatch(r"u\d{5}").all()
    assert events["item_id"].str.fullmatch(r"i\d{4}").all()
    assert set(events["event_type"]) == {"view", "cart", "purchase"}
    assert events["timestamp"].is_monotonic_increasing
    assert not events.isna().any().any()


def test_funnel_rates(shop: dict[str, Path]) -> None:
    events = pd.read_csv(shop["events"])
    counts = events["event_type"].value_counts()
    assert 0.10 < counts["cart"] / counts["view"] < 0.20
    assert 0.04 < counts["purchase"] / counts["view"] < 0.09
    purchases = events[events["event_type"] == "purchase"]
    assert purchases.duplicated(["user_id", "item_id"]).mean() < 0.05
    viewed = events[events["event_type"] == "view"]
    assert viewed.duplicated(["user_id", "item_id"]).mean() > 0.05


def test_side_tables_schema(shop: dict[str, Path]) -> None:
    items = pd.read_csv(shop["items"], dtype={"price": "string"})
    assert list(items.columns) == ["item_id", "category", "brand", "price"]
    assert len(items) == SMALL["items"] and items["item_id"].is_unique
    assert items["category"].isin(demo_shop.CATEGORIES).all()
    assert items["price"].dropna().str.fullmatch(r"\d+\.\d{2}").all()
    assert 0 < items["price"].isna().sum() <= 0.05 * len(items) + 2

    users = pd.read_csv(shop["users"])
    assert list(users.columns) == ["user_id", "age", "gender", "region"]
    assert len(users) == SMALL["users"] and users["user_id"].is_unique
    ages = users["age"].dropna()
    assert (ages == ages.round()).all() and ages.between(18, 80).all()
    assert 0 < users["age"].isna().sum() <= 0.05 * len(users) + 2
    assert set(users["gender"]) <= set(demo_shop.GENDERS)
    assert set(users["region"]) <= set(demo_shop.REGIONS)


def test_interests_schema(shop: dict[str, Path]) -> None:
    truth = pd.read_csv(shop["interests"])
    assert list(truth.columns) == ["user_id", "month", "category", "share"]
    assert truth["month"].str.fullmatch(r"2024-(0[1-9]|1[0-2])").all()
    assert truth["category"].isin(demo_shop.CATEGORIES).all()
    assert truth["share"].between(0.01, 1).all()
    totals = truth.groupby(["user_id", "month"])["share"].sum()
    assert totals.between(0.8, 1.0001).all()


def test_events_refer_to_known_users_and_items_within_the_period(shop: dict[str, Path]) -> None:
    events = pd.read_csv(shop["events"])
    assert events["user_id"].isin(pd.read_csv(shop["users"])["user_id"]).all()
    assert events["item_id"].isin(pd.read_csv(shop["items"])["item_id"]).all()
    assert events["timestamp"].min() >= START.timestamp()
    assert events["timestamp"].max() < END.timestamp()


def test_users_join_throughout_the_period(views: pd.DataFrame) -> None:
    first_month = views.groupby("user_id")["month"].min()
    assert (first_month == 0).mean() > 0.2
    assert (first_month >= 6).sum() > 0.1 * len(first_month)


def test_gzip_files_are_gzip_without_timestamp(shop: dict[str, Path]) -> None:
    for name in ("events", "interests"):
        header = shop[name].read_bytes()[:10]
        assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0"
        gzip.decompress(shop[name].read_bytes())


def test_readme_states_the_arguments(shop: dict[str, Path]) -> None:
    text = shop["readme"].read_text()
    assert "users=500, items=150, months=12, seed=3" in text
    assert "events.csv.gz" in text and "interests.csv.gz" in text


def test_same_seed_same_bytes_other_seed_other_data(shop: dict[str, Path], tmp_path: Path) -> None:
    again = generate(tmp_path / "again", **SMALL)
    for name, path in shop.items():
        assert again[name].read_bytes() == path.read_bytes(), name
    other = generate(tmp_path / "other", **{**SMALL, "seed": SMALL["seed"] + 1})
    assert other["events"].read_bytes() != shop["events"].read_bytes()
    assert other["interests"].read_bytes() != shop["interests"].read_bytes()


def test_rejects_unusable_arguments(tmp_path: Path) -> None:
    with pytest.raises(PenchantError, match="first day of a month"):
        generate(tmp_path, users=10, items=100, months=2, start="2024-01-15")
    with pytest.raises(PenchantError, match="items"):
        generate(tmp_path, users=10, items=10, months=2)


def test_season_shows_in_events(views: pd.DataFrame) -> None:
    """Garden peaks in late spring, toys and gifts in November-December."""
    calendar_month = views["month"] % 12 + 1

    def share(category: str, months: set[int]) -> float:
        in_months = views[calendar_month.isin(months)]
        return float((in_months["category"] == category).mean())

    garden_in, garden_out = share("garden", {4, 5, 6, 7}), share("garden", {1, 2, 11, 12})
    assert garden_in > 1.5 * garden_out
    gifts_in, gifts_out = share("toys_gifts", {11, 12}), share("toys_gifts", {3, 4, 5, 6, 7, 8})
    assert gifts_in > 1.5 * gifts_out


def test_life_stage_baby_before_toddler(shop: dict[str, Path], views: pd.DataFrame) -> None:
    """Users the truth moves from the baby stage to the toddler one view in that order.

    Switchers are picked from the truth (their baby-care share drops by more than 0.2 from
    one month to the next); their views must show the order, pooled and user by user.
    """
    truth = pd.read_csv(shop["interests"])
    baby = truth[truth["category"] == "baby_care"].sort_values(["user_id", "month"])
    switchers = baby.loc[baby.groupby("user_id")["share"].diff() < -0.2, "user_id"].unique()
    kind = views["category"].map(
        {"baby_care": "baby", "toddler_toys": "toddler", "kids_clothing": "toddler"}
    )
    staged = views.assign(kind=kind)[views["user_id"].isin(switchers) & kind.notna()]
    per_user = staged.groupby(["user_id", "kind"])["month"].mean().unstack().dropna()
    assert len(per_user) >= 4, "too few life-stage users with both stages to judge"
    assert (per_user["baby"] < per_user["toddler"]).mean() >= 0.75
    pooled = staged.groupby("kind")["month"].mean()
    assert pooled["baby"] + 1 < pooled["toddler"]


def _shares(frame: pd.DataFrame, users: pd.Index) -> np.ndarray:
    """Each user's share of views per category (rows: ``users``, NaN if none)."""
    counts = pd.crosstab(frame["user_id"], frame["category"])
    counts = counts.reindex(index=users, columns=demo_shop.CATEGORIES, fill_value=0).to_numpy()
    with np.errstate(invalid="ignore"):
        return counts / counts.sum(axis=1, keepdims=True)  # NaN rows: no views there


def _overlap(a: pd.DataFrame, b: pd.DataFrame, users: pd.Index) -> float:
    """Mean chance that a view from ``a`` and one from ``b`` share a category.

    Unlike a divergence of two empirical distributions this is unbiased however few
    sessions a user has, so its mean over users compares fairly across splits. Users with
    no views on one side (a random half can miss them) are left out.
    """
    return float(np.nanmean((_shares(a, users) * _shares(b, users)).sum(axis=1)))


def _next(users: pd.Index) -> dict[str, str]:
    """Pairs each user with another, to compare a user's views with a stranger's."""
    return dict(zip(users, np.roll(users, 1), strict=True))


def test_interests_evolve_but_keep_overlap(views: pd.DataFrame) -> None:
    """A user's first and last three active months overlap less than random halves of them.

    Halves are drawn by day, so that sessions stay whole as they do in the early/late split;
    with static interests both overlaps have the same expectation. The early views still
    overlap the same user's late views far more than another user's.
    """
    span = views.groupby("user_id")["month"].agg(["min", "max"])
    span = span[span["max"] - span["min"] >= 7]
    rel = views.join(span, on="user_id", how="inner")
    early = rel[rel["month"] <= rel["min"] + 2]
    late = rel[rel["month"] >= rel["max"] - 2]
    both = pd.concat([early, late])
    days = both[["user_id", "day"]].drop_duplicates()
    per_window = [
        early.groupby("user_id")["day"].nunique(),
        late.groupby("user_id")["day"].nunique(),
    ]
    enough = pd.concat(per_window, axis=1).fillna(0).min(axis=1) >= 2
    users = enough[enough].index
    assert len(users) >= 100, "too few long-active users to judge"

    rng = np.random.default_rng(0)
    halves = []
    for _ in range(10):
        pick = days.assign(half=rng.random(len(days)) < 0.5)
        split = both.merge(pick)
        halves.append(_overlap(split[split["half"]], split[~split["half"]], users))
    evolving = _overlap(early, late, users)
    strangers = _overlap(early, late.assign(user_id=late["user_id"].map(_next(users))), users)
    assert evolving < 0.93 * np.mean(halves)
    assert evolving > 3 * strangers
