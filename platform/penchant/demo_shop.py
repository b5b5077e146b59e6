"""A synthetic shop whose shoppers' interests evolve in known ways.

Real logs never say what a shopper *wanted* in a month, so a forecaster of interests cannot be
checked against the truth on them. This generator writes the truth next to the log: each
user's monthly interest distribution over categories (``interests.csv.gz``), produced by a few
named mechanisms (slow drift to related categories, seasons, a baby-to-toddler life stage,
occasional new interests), and an event log sampled from it that looks like a shop's
(heavy-tailed activity, users joining and churning, items launching and ageing, brands).

Everything is drawn from one seeded generator and written without timestamps in the gzip
headers, so the same arguments give byte-identical files and the bundled copy can be
regenerated and compared.
"""

from __future__ import annotations

import gzip
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from penchant import atomic
from penchant.errors import PenchantError

SECONDS_PER_DAY = 86_400

# Category, group, median price, seasonal peak (month of year, 0 = none), seasonal strength
# (log-factor at the peak), season width (higher = sharper), age effect (log-weight per 15
# years above 42), female effect (log-weight added for F, subtracted for M).
# The baby group starts low: most baby interest comes from the life-stage mechanism, so that
# its timing is a clean, testable signal.
TAXONOMY: tuple[tuple[str, str, float, float, float, float, float, float], ...] = (
    ("phones", "electronics", 450, 0, 0.0, 1, -0.3, -0.1),
    ("phone_accessories", "electronics", 18, 0, 0.0, 1, -0.4, 0.0),
    ("laptops", "electronics", 850, 0, 0.0, 1, -0.1, -0.2),
    ("audio", "electronics", 90, 0, 0.0, 1, -0.4, -0.2),
    ("cameras", "electronics", 500, 0, 0.0, 1, 0.1, -0.2),
    ("kitchen", "home", 40, 0, 0.0, 1, 0.4, 0.3),
    ("furniture", "home", 260, 0, 0.0, 1, 0.3, 0.1),
    ("decor", "home", 30, 0, 0.0, 1, 0.2, 0.5),
    ("garden", "home", 45, 5.5, 1.5, 1, 0.7, 0.0),
    ("womens_clothing", "fashion", 45, 0, 0.0, 1, -0.3, 1.5),
    ("mens_clothing", "fashion", 45, 0, 0.0, 1, -0.2, -1.5),
    ("shoes", "fashion", 75, 0, 0.0, 1, -0.2, 0.4),
    ("winter_clothing", "fashion", 110, 12.5, 1.2, 1, 0.1, 0.0),
    ("swimwear", "fashion", 35, 7, 1.3, 2, -0.5, 0.4),
    ("fitness", "sports", 40, 1, 0.5, 3, -0.4, 0.0),
    ("cycling", "sports", 320, 6, 0.7, 1, 0.0, -0.6),
    ("winter_sports", "sports", 180, 1, 1.3, 2, -0.2, -0.3),
    ("camping", "sports", 70, 7, 1.0, 2, -0.1, -0.3),
    ("baby_care", "baby", 25, 0, 0.0, 1, -0.5, 0.5),
    ("toddler_toys", "baby", 30, 0, 0.0, 1, -0.3, 0.3),
    ("kids_clothing", "baby", 22, 0, 0.0, 1, -0.3, 0.5),
    ("books", "media", 15, 0, 0.0, 1, 0.5, 0.4),
    ("video_games", "media", 50, 0, 0.0, 1, -0.8, -0.9),
    ("music_movies", "media", 14, 0, 0.0, 1, 0.2, 0.0),
    ("toys_gifts", "media", 30, 12, 1.6, 4, 0.2, 0.2),
    ("skincare", "beauty", 28, 0, 0.0, 1, 0.1, 1.3),
    ("makeup", "beauty", 22, 0, 0.0, 1, -0.4, 1.8),
    ("fragrance", "beauty", 55, 12, 0.6, 4, 0.1, 0.7),
)
CATEGORIES = tuple(row[0] for row in TAXONOMY)
GROUPS = tuple(dict.fromkeys(row[1] for row in TAXONOMY))
BABY, TODDLER = ("baby_care",), ("toddler_toys", "kids_clothing")

REGIONS = ("north", "south", "east", "west", "capital")
REGION_SHARES = (0.2, 0.22, 0.18, 0.18, 0.22)
# Regional tastes, so that region carries some signal for cold-start users.
REGION_EFFECTS = {
    "north": {"winter_sports": 0.8, "winter_clothing": 0.6, "garden": -0.3},
    "south": {"swimwear": 0.8, "camping": 0.4, "garden": 0.4, "winter_sports": -0.8},
    "east": {"kitchen": 0.3, "books": 0.3, "music_movies": 0.3},
    "west": {"cycling": 0.6, "fitness": 0.3, "camping": 0.2},
    "capital": {"phones": 0.3, "laptops": 0.4, "furniture": 0.2, "garden": -0.6},
}
GENDERS = ("F", "M", "X")
GENDER_SHARES = (0.49, 0.48, 0.03)
GENDER_SIGN = (1.0, -1.0, 0.0)

# Interests: mass on the 2-4 core categories; the rest is a thin personal background.
CORE_COUNTS, CORE_COUNT_SHARES = (2, 3, 4), (0.35, 0.4, 0.25)
CORE_MASS = 0.85
SAME_GROUP_PULL = 3.0  # how much likelier a further core category is within a chosen group
DRIFT_RATE = (0.05, 0.20)  # share of mass moved toward related categories per month
DRIFT_TARGET_SHAPE = 0.4  # low: each user drifts toward one or two categories of a group
NEW_INTEREST_RATE, NEW_INTEREST_MASS = 0.02, 0.15
LIFE_STAGE_SHARE = 0.08
LIFE_STAGE_BEGUN_BEFORE = 10  # months before the period that a stage may have begun
LIFE_STAGE_BABY_MONTHS = (9, 12)
BABY_WEIGHT, TODDLER_WEIGHT = 0.4, 0.35
TODDLER_SPLIT = (0.55, 0.45)
TODDLER_BABY_LEFTOVER = 0.05

# Activity.
ALREADY_ACTIVE_SHARE = 0.5
CHURN_SHARE = 0.3
SESSIONS_PER_MONTH = (-0.35, 0.9)  # log-normal (mu, sigma) of a user's monthly session rate
HOLIDAY_ACTIVITY = {11: 1.25, 12: 1.4}
EXTRA_VIEWS_PER_SESSION = 3.0  # Poisson mean on top of the first view
SECONDS_BETWEEN_VIEWS = 90.0
CART_RATE, PURCHASE_GIVEN_CART = 0.15, 0.45
REPEAT_PURCHASE_KEPT = 0.1
LOYALTY_MEAN = 2.5  # mean extra weight on a user's favourite brand (exponential over users)

# Catalogue.
PRE_PERIOD_SHARE, PRE_PERIOD_MONTHS = 0.35, 24
ZIPF_EXPONENT = 0.9
ITEM_LIFETIME_MONTHS = (4.0, 14.0)  # popularity decays as exp(-age / lifetime)
OLD_ITEM_FLOOR = 0.02
PRICE_SIGMA, BRAND_PRICE_SIGMA = 0.5, 0.25
MISSING_SHARE = 0.01
MIN_SHARE = 0.01

FILES = {
    "events": "events.csv.gz",
    "items": "items.csv",
    "users": "users.csv",
    "interests": "interests.csv.gz",
    "readme": "README.md",
}


@dataclass(frozen=True)
class _Calendar:
    """Month boundaries as epoch seconds, so events and interests agree on months."""

    bounds: np.ndarray  # (months + 1,) int64
    month_of_year: np.ndarray  # (months,) 1..12
    labels: tuple[str, ...]


@dataclass(frozen=True)
class _Catalogue:
    """Items in (category, brand) order, so that both are contiguous index ranges."""

    category: np.ndarray
    brand: np.ndarray  # index into brand_names
    group_brands: tuple[np.ndarray, ...]  # brand indexes of each group
    brand_share: tuple[np.ndarray, ...]  # how common each of a group's brands is
    brand_names: tuple[str, ...]
    price: np.ndarray
    weight: np.ndarray  # (months, items) popularity
    labels: np.ndarray  # output id of each item


@dataclass(frozen=True)
class _Population:
    """Who the users are, when they are active, and what they want each month."""

    age: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    first: np.ndarray  # first active month
    last: np.ndarray  # last active month
    interests: np.ndarray  # (users, months, categories), the ground truth


def generate(
    out_dir: str | Path,
    users: int = 3000,
    items: int = 1000,
    months: int = 18,
    seed: int = 0,
    start: str = "2024-01-01",
) -> dict[str, Path]:
    """Write the shop into ``out_dir`` and return each file's path by name.

    Names are ``events``, ``items``, ``users``, ``interests`` and ``readme``; see the
    README the generator writes for columns and mechanisms.
    """
    _check_arguments(users, items, months)
    calendar = _calendar(start, months)
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng, items, months)
    population = _population(rng, users, calendar)
    events = _events(rng, population, catalogue, calendar)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = {"users": users, "items": items, "months": months, "seed": seed, "start": start}
    tables = {
        "events": _csv(events),
        "items": _csv(_items_table(rng, catalogue), float_format="%.2f"),
        "users": _csv(_users_table(rng, population)),
        "interests": _csv(_interests_table(population, calendar)),
        "readme": _readme(args, calendar, events).encode(),
    }
    paths = {}
    for name, data in tables.items():
        paths[name] = out / FILES[name]
        if FILES[name].endswith(".gz"):
            data = gzip.compress(data, compresslevel=6, mtime=0)
        atomic.write_bytes(paths[name], data)
    return paths


def _check_arguments(users: int, items: int, months: int) -> None:
    if users < 1 or months < 1:
        raise PenchantError(f"demo shop needs users ≥ 1 and months ≥ 1 (got {users}, {months})")
    if items < 2 * len(CATEGORIES):
        raise PenchantError(
            f"demo shop needs items ≥ {2 * len(CATEGORIES)} so that every "
            f"category has items from the start (got {items})"
        )


def _calendar(start: str, months: int) -> _Calendar:
    try:
        first = pd.Timestamp(start, tz="UTC")
    except (ValueError, TypeError) as error:
        raise PenchantError(f"demo shop start {start!r} is not a date like 2024-01-01") from error
    if first != first.normalize() or first.day != 1:
        raise PenchantError(
            f"demo shop start must be the first day of a month (got {start!r}) "
            "so that interest months are calendar months"
        )
    bounds = [first + pd.DateOffset(months=k) for k in range(months + 1)]
    return _Calendar(
        bounds=np.array([b.value // 10**9 for b in bounds], dtype=np.int64),
        month_of_year=np.array([b.month for b in bounds[:-1]]),
        labels=tuple(b.strftime("%Y-%m") for b in bounds[:-1]),
    )


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n - 1)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(n)])


def _column(index: int) -> np.ndarray:
    return np.array([row[index] for row in TAXONOMY], dtype=float)


def _group_of() -> np.ndarray:
    return np.array([GROUPS.index(row[1]) for row in TAXONOMY])


def _group_matrix() -> np.ndarray:
    """Category × group indicator: mass per group is ``shares @ G``."""
    return np.eye(len(GROUPS))[_group_of()]


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=-1)
    draws = rng.random(probs.shape[:-1])[..., None] * cum[..., -1:]
    return np.minimum((cum <= draws).sum(axis=-1), probs.shape[-1] - 1)


# --- catalogue -------------------------------------------------------------------------------


def _catalogue(rng: np.random.Generator, n: int, months: int) -> _Catalogue:
    n_cat = len(CATEGORIES)
    per_category = np.full(n_cat, n // n_cat)
    per_category[rng.permutation(n_cat)[: n % n_cat]] += 1
    category = np.repeat(np.arange(n_cat), per_category)
    group_of = _group_of()
    group_brands, brand_share = _brands(rng, np.bincount(group_of, weights=per_category))
    brand = np.empty(n, dtype=np.int64)
    for c in range(n_cat):
        g = group_of[c]
        brand[category == c] = rng.choice(group_brands[g], size=per_category[c], p=brand_share[g])
    order = np.lexsort((brand, category))
    category, brand = category[order], brand[order]
    names = _brand_names(rng, sum(len(b) for b in group_brands))
    return _Catalogue(
        category=category,
        brand=brand,
        group_brands=group_brands,
        brand_share=brand_share,
        brand_names=names,
        price=_prices(rng, category, brand, len(names)),
        weight=_popularity(rng, category, months),
        labels=rng.permutation(_ids("i", n, 4)),
    )


def _brands(
    rng: np.random.Generator, group_sizes: np.ndarray
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Brands belong to a group (a phone maker also sells audio) so loyalty crosses categories."""
    counts = np.clip(np.round(group_sizes / 10), 3, 8).astype(int)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    brands = tuple(np.arange(offsets[g], offsets[g + 1]) for g in range(len(counts)))
    shares = tuple(rng.dirichlet(np.full(k, 1.5)) for k in counts)
    return brands, shares


def _brand_names(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    heads = (
        "Al",
        "Bel",
        "Cor",
        "Dra",
        "Ev",
        "Fen",
        "Gal",
        "Hal",
        "Ix",
        "Jun",
        "Kor",
        "Lum",
        "Mar",
        "Nor",
        "Or",
        "Pel",
        "Quin",
        "Ros",
        "Sol",
        "Tav",
        "Ul",
        "Ver",
        "Wil",
        "Zen",
    )
    tails = ("a", "ex", "ion", "ora", "ix", "um", "eo", "ara", "on", "is", "ova", "yn")
    combos = [h + t for h in heads for t in tails]
    picks = rng.permutation(len(combos))[:n]
    return tuple(combos[k] for k in picks)


def _prices(
    rng: np.random.Generator, category: np.ndarray, brand: np.ndarray, n_brands: int
) -> np.ndarray:
    premium = rng.lognormal(0.0, BRAND_PRICE_SIGMA, n_brands)
    median = _column(2)[category] * premium[brand]
    return np.round(median * rng.lognormal(0.0, PRICE_SIGMA, len(category)), 2)


def _popularity(rng: np.random.Generator, category: np.ndarray, months: int) -> np.ndarray:
    """Zipf appeal times a life cycle: items launch through the period, ramp up, then fade.

    A few items per category are on sale from before the start so no category is ever empty.
    """
    n = len(category)
    rank = np.empty(n)
    pre_period = np.zeros(n, dtype=bool)
    for c in np.unique(category):
        members = np.flatnonzero(category == c)
        rank[members] = rng.permutation(len(members))
        order = rng.permutation(members)
        pre_period[order[: max(2, round(PRE_PERIOD_SHARE * len(members)))]] = True
    appeal = (rank + 1) ** -ZIPF_EXPONENT
    launch = np.where(
        pre_period, rng.integers(-PRE_PERIOD_MONTHS, 0, n), rng.integers(0, months, n)
    )
    lifetime = rng.uniform(*ITEM_LIFETIME_MONTHS, n)
    age = np.arange(months)[:, None] - launch[None, :]
    ramp = np.clip((age + 1) / 2, 0, 1)
    life = ramp * (np.exp(-np.maximum(age, 0) / lifetime) + OLD_ITEM_FLOOR)
    return appeal * life


# --- population and interests ---------------------------------------------------------------


def _population(rng: np.random.Generator, n: int, calendar: _Calendar) -> _Population:
    """Interests evolve over the whole period; activity only decides when they are seen."""
    months = len(calendar.labels)
    age = np.clip(np.round(rng.normal(40, 13, n)), 18, 80).astype(int)
    gender = rng.choice(len(GENDERS), size=n, p=GENDER_SHARES)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARES)
    prior = _normalise(np.exp(_prior_logits(age, gender, region)))
    base = _evolve(rng, _initial_interests(rng, prior), prior, months)
    staged = _life_stage(rng, base, age)
    first = np.where(rng.random(n) < ALREADY_ACTIVE_SHARE, 0, rng.integers(0, months, n))
    churn_at = first + np.floor(rng.random(n) * (months - first)).astype(int)
    last = np.where(rng.random(n) < CHURN_SHARE, churn_at, months - 1)
    return _Population(
        age=age,
        gender=gender,
        region=region,
        first=first,
        last=last,
        interests=_normalise(staged * _season_factors()[calendar.month_of_year]),
    )


def _prior_logits(age: np.ndarray, gender: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Who likes what to begin with: age, gender and region tilt a shared base."""
    base = np.where(np.isin(CATEGORIES, BABY + TODDLER), -1.5, 0.0)
    regional = np.zeros((len(REGIONS), len(CATEGORIES)))
    for r, effects in enumerate(REGION_EFFECTS[name] for name in REGIONS):
        for category, effect in effects.items():
            regional[r, CATEGORIES.index(category)] = effect
    sign = np.array(GENDER_SIGN)[gender]
    return (
        base + np.outer((age - 42) / 15, _column(6)) + np.outer(sign, _column(7)) + regional[region]
    )


def _initial_interests(rng: np.random.Generator, prior: np.ndarray) -> np.ndarray:
    """2-4 core categories, favouring a group once it is chosen, over a thin background."""
    n, n_cat = prior.shape
    groups = _group_matrix()
    cores = rng.choice(CORE_COUNTS, size=n, p=CORE_COUNT_SHARES)
    chosen = np.zeros((n, n_cat), dtype=bool)
    for step in range(max(CORE_COUNTS)):
        related = (chosen @ groups) @ groups.T > 0
        score = np.log(prior) + np.log1p(SAME_GROUP_PULL * related) + rng.gumbel(size=(n, n_cat))
        score[chosen] = -np.inf
        pick = score.argmax(axis=1)
        taking = np.flatnonzero(step < cores)
        chosen[taking, pick[taking]] = True
    core = _normalise(rng.gamma(2.0, size=(n, n_cat)) * chosen)
    background = _normalise(rng.gamma(3.0 * prior) + 1e-12)
    return CORE_MASS * core + (1 - CORE_MASS) * background


def _evolve(
    rng: np.random.Generator, initial: np.ndarray, prior: np.ndarray, months: int
) -> np.ndarray:
    """Monthly drift toward personal related categories, plus rare new interests.

    Drift keeps each group's mass and redistributes it inside the group toward a personal
    target, so users change slowly while keeping to their kinds of things.
    """
    n, n_cat = initial.shape
    groups = _group_matrix()
    target = rng.gamma(DRIFT_TARGET_SHAPE, size=(n, n_cat)) + 1e-9
    target /= (target @ groups) @ groups.T
    rate = rng.uniform(*DRIFT_RATE, size=(n, 1))
    out = np.empty((n, months, n_cat))
    shares = initial
    for t in range(months):
        out[:, t] = shares
        drifted = (1 - rate) * shares + rate * target * ((shares @ groups) @ groups.T)
        adopting = rng.random(n) < NEW_INTEREST_RATE
        new = np.eye(n_cat)[_categorical(rng, prior)]
        shares = np.where(
            adopting[:, None], (1 - NEW_INTEREST_MASS) * drifted + NEW_INTEREST_MASS * new, drifted
        )
    return out


def _life_stage(rng: np.random.Generator, base: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Some young adults get a baby: baby care first, toddler things 9-12 months later.

    Stages may start before the period (parents already there) or late in it.
    """
    n, months, n_cat = base.shape
    fit = np.exp(-(((age - 32) / 7) ** 2))
    chosen = rng.random(n) < np.minimum(1, LIFE_STAGE_SHARE * fit / fit.mean())
    begin = rng.integers(-LIFE_STAGE_BEGUN_BEFORE, max(months - 3, 1), n)
    toddler_at = begin + rng.integers(LIFE_STAGE_BABY_MONTHS[0], LIFE_STAGE_BABY_MONTHS[1] + 1, n)
    baby, toddler = np.zeros(n_cat), np.zeros(n_cat)
    baby[CATEGORIES.index(BABY[0])] = 1
    toddler[[CATEGORIES.index(c) for c in TODDLER]] = TODDLER_SPLIT
    toddler = (1 - TODDLER_BABY_LEFTOVER) * toddler + TODDLER_BABY_LEFTOVER * baby
    t = np.arange(months)[None, :]
    in_baby = chosen[:, None] & (begin[:, None] <= t) & (t < toddler_at[:, None])
    in_toddler = chosen[:, None] & (t >= toddler_at[:, None])
    weight = (BABY_WEIGHT * in_baby + TODDLER_WEIGHT * in_toddler)[..., None]
    stage = np.where(in_toddler[..., None], toddler, baby)
    return (1 - weight) * base + weight * stage


def _season_factors() -> np.ndarray:
    """(13, categories) multiplicative factors by month of year (row 0 unused).

    A von Mises bump, rescaled so that the peak is exp(strength) and the yearly geometric
    mean is 1: seasonal categories move within the year, not on average.
    """
    peak, strength, width = _column(3), _column(4), _column(5)
    month = np.arange(1, 13)[:, None]
    bump = np.exp(width * (np.cos(2 * np.pi * (month - peak) / 12) - 1))
    spread = np.where(bump.max(0) > bump.mean(0), bump.max(0) - bump.mean(0), 1)
    log_factor = np.where(peak > 0, strength * (bump - bump.mean(0)) / spread, 0)
    return np.vstack([np.ones(len(CATEGORIES)), np.exp(log_factor)])


# --- events ----------------------------------------------------------------------------------


def _events(
    rng: np.random.Generator, population: _Population, catalogue: _Catalogue, calendar: _Calendar
) -> pd.DataFrame:
    """Sessions of views in one category each; some views go on to cart and purchase."""
    user, month = _sessions(rng, population, calendar)
    category = _categorical(rng, population.interests[user, month])
    n_views = 1 + rng.poisson(EXTRA_VIEWS_PER_SESSION, len(user))
    session = np.repeat(np.arange(len(user)), n_views)
    opening = np.cumsum(n_views) - n_views  # index of each session's first view
    first_view = opening[session]
    gaps = rng.exponential(SECONDS_BETWEEN_VIEWS, len(session))
    gaps[opening] = 0
    elapsed = np.cumsum(gaps)
    time = _session_starts(rng, month, calendar)[session] + elapsed - elapsed[first_view]
    item = _pick_items(
        rng, catalogue, len(population.age), user[session], month[session], category[session]
    )
    month_end = calendar.bounds[month[session] + 1] - 1
    log = _funnel(rng, user[session], item, time, month_end)
    return pd.DataFrame(
        {
            "user_id": _ids("u", len(population.age), 5)[log["user"]],
            "item_id": catalogue.labels[log["item"]],
            "timestamp": log["timestamp"],
            "event_type": np.array(["view", "cart", "purchase"])[log["event"]],
        }
    )


def _sessions(
    rng: np.random.Generator, population: _Population, calendar: _Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """(user, month) of every session: heavy-tailed rates, only while the user is active."""
    n, months = len(population.age), len(calendar.labels)
    rate = rng.lognormal(*SESSIONS_PER_MONTH, n)
    holiday = np.array([HOLIDAY_ACTIVITY.get(m, 1.0) for m in calendar.month_of_year])
    t = np.arange(months)[None, :]
    active = (population.first[:, None] <= t) & (t <= population.last[:, None])
    counts = rng.poisson(rate[:, None] * holiday[None, :]) * active
    cell = np.repeat(np.arange(n * months), counts.ravel())
    return cell // months, cell % months


def _session_starts(rng: np.random.Generator, month: np.ndarray, calendar: _Calendar) -> np.ndarray:
    """Uniform within the month, leaving room for the session to end in the same month."""
    begin, end = calendar.bounds[month], calendar.bounds[month + 1] - 2 * 3600
    return begin + rng.random(len(month)) * (end - begin)


def _favourite_brands(rng: np.random.Generator, catalogue: _Catalogue, n: int) -> np.ndarray:
    """(users, groups) favourite brand; popular brands have more loyal customers."""
    return np.stack(
        [
            rng.choice(brands, size=n, p=share)
            for brands, share in zip(catalogue.group_brands, catalogue.brand_share, strict=True)
        ],
        axis=1,
    )


def _pick_items(
    rng: np.random.Generator,
    catalogue: _Catalogue,
    n_users: int,
    user: np.ndarray,
    month: np.ndarray,
    category: np.ndarray,
) -> np.ndarray:
    """Draw from popularity this month within the category, tilted to the favourite brand.

    Weight ∝ popularity × (1 + loyalty·[favourite brand]) is a two-part mixture: the whole
    category, or only the favourite brand's range. Items are in (category, brand) order, so
    both parts are ranges of one cumulative sum over (month, item) and one searchsorted draws
    every view at once.
    """
    n_items, n_brands = len(catalogue.category), len(catalogue.brand_names)
    favourite = _favourite_brands(rng, catalogue, n_users)
    loyalty = rng.exponential(LOYALTY_MEAN, n_users)
    cum = np.concatenate([[0.0], np.cumsum(catalogue.weight.ravel())])
    offset = month * n_items
    key = catalogue.category * n_brands + catalogue.brand
    wanted = category * n_brands + favourite[user, _group_of()[category]]
    cat_lo = offset + np.searchsorted(catalogue.category, category)
    cat_hi = offset + np.searchsorted(catalogue.category, category, side="right")
    brand_lo = offset + np.searchsorted(key, wanted)
    brand_hi = offset + np.searchsorted(key, wanted, side="right")
    category_mass = cum[cat_hi] - cum[cat_lo]
    brand_mass = loyalty[user] * (cum[brand_hi] - cum[brand_lo])
    to_brand = rng.random(len(user)) * (category_mass + brand_mass) >= category_mass
    lo, hi = np.where(to_brand, brand_lo, cat_lo), np.where(to_brand, brand_hi, cat_hi)
    target = cum[lo] + rng.random(len(user)) * (cum[hi] - cum[lo])
    picked = np.clip(np.searchsorted(cum, target, side="right") - 1, lo, hi - 1)
    return picked - offset


def _funnel(
    rng: np.random.Generator,
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    month_end: np.ndarray,
) -> dict[str, np.ndarray]:
    """Views, the carts and purchases that follow some of them, sorted by time.

    Buying the same item again is rare (most goods are not consumables), while viewing it
    again is common, so repeated purchases are mostly dropped.
    """
    n = len(user)
    carted = rng.random(n) < CART_RATE
    bought = carted & (rng.random(n) < PURCHASE_GIVEN_CART)
    cart_time = time + 5 + rng.exponential(40, n)
    buy_time = cart_time + 30 + rng.exponential(300, n)
    bought[_repeat_purchases(rng, user, item, buy_time, bought)] = False
    parts = [(np.ones(n, dtype=bool), time, 0), (carted, cart_time, 1), (bought, buy_time, 2)]
    log = {
        "user": np.concatenate([user[mask] for mask, _, _ in parts]),
        "item": np.concatenate([item[mask] for mask, _, _ in parts]),
        "timestamp": np.concatenate(
            [np.minimum(np.floor(t[mask]), month_end[mask]) for mask, t, _ in parts]
        ).astype(np.int64),
        "event": np.concatenate([np.full(mask.sum(), kind) for mask, _, kind in parts]),
    }
    order = np.lexsort((log["event"], log["item"], log["user"], log["timestamp"]))
    return {name: values[order] for name, values in log.items()}


def _repeat_purchases(
    rng: np.random.Generator,
    user: np.ndarray,
    item: np.ndarray,
    buy_time: np.ndarray,
    bought: np.ndarray,
) -> np.ndarray:
    """Indexes of purchases to drop: later purchases of an already bought item, mostly."""
    candidates = np.flatnonzero(bought)
    candidates = candidates[np.argsort(buy_time[candidates], kind="stable")]
    pairs = pd.Series(user[candidates].astype(np.int64) * (int(item.max()) + 1) + item[candidates])
    repeat = pairs.duplicated().to_numpy()
    kept = rng.random(len(candidates)) < REPEAT_PURCHASE_KEPT
    return candidates[repeat & ~kept]


# --- tables and files ------------------------------------------------------------------------


def _with_missing(rng: np.random.Generator, values: pd.Series) -> pd.Series:
    """Blank a small share so a missing-value preprocessor has something to fill."""
    return values.mask(rng.random(len(values)) < MISSING_SHARE)


def _items_table(rng: np.random.Generator, catalogue: _Catalogue) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "item_id": catalogue.labels,
            "category": np.array(CATEGORIES)[catalogue.category],
            "brand": np.array(catalogue.brand_names)[catalogue.brand],
            "price": _with_missing(rng, pd.Series(catalogue.price)),
        }
    )
    return table.sort_values("item_id", ignore_index=True)


def _users_table(rng: np.random.Generator, population: _Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": _ids("u", len(population.age), 5),
            "age": _with_missing(rng, pd.Series(population.age, dtype="Int64")),
            "gender": np.array(GENDERS)[population.gender],
            "region": np.array(REGIONS)[population.region],
        }
    )


def _interests_table(population: _Population, calendar: _Calendar) -> pd.DataFrame:
    """Long format, active months only: before joining or after churning nothing is seen."""
    shares = population.interests
    t = np.arange(shares.shape[1])[None, :, None]
    active = (population.first[:, None, None] <= t) & (t <= population.last[:, None, None])
    user, month, category = np.nonzero(active & (shares >= MIN_SHARE))
    return pd.DataFrame(
        {
            "user_id": _ids("u", shares.shape[0], 5)[user],
            "month": np.array(calendar.labels)[month],
            "category": np.array(CATEGORIES)[category],
            "share": np.round(shares[user, month, category], 4),
        }
    )


def _csv(frame: pd.DataFrame, float_format: str | None = None) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", float_format=float_format)
    return buffer.getvalue().encode()


def _readme(args: dict[str, object], calendar: _Calendar, events: pd.DataFrame) -> str:
    """Written from the same constants the generator used, so it cannot fall out of date."""
    call = ", ".join(f"{k}={v!r}" for k, v in args.items())
    counts = events["event_type"].value_counts()
    header = f"""# Penchant demo shop

Synthetic e-commerce log whose shoppers' interests evolve in known ways, with the truth
written next to it. Regenerate it byte-identically with

    from penchant.demo_shop import generate
    generate("<folder>", {call})

"""
    summary = (
        f"Period: {calendar.labels[0]} to {calendar.labels[-1]} ({len(calendar.labels)} months, "
        f"UTC). Events: {len(events)} ({counts.get('view', 0)} views, "
        f"{counts.get('cart', 0)} carts, {counts.get('purchase', 0)} purchases) from "
        f"{events['user_id'].nunique()} of {args['users']} users on "
        f"{events['item_id'].nunique()} of {args['items']} items."
    )
    return (
        header
        + textwrap.fill(summary, 92, break_on_hyphens=False)
        + "\n\n## Files\n\n"
        + _bullets(_file_notes())
        + "\n## How it was generated\n\n"
        + _bullets(_mechanism_notes())
    )


def _bullets(notes: list[str]) -> str:
    return "".join(
        textwrap.fill(note, 92, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False)
        + "\n"
        for note in notes
    )


def _file_notes() -> list[str]:
    return [
        "`events.csv.gz`: `user_id,item_id,timestamp,event_type`; timestamp in epoch seconds "
        "(UTC), event_type one of view, cart, purchase; sorted by timestamp.",
        f"`items.csv`: `item_id,category,brand,price`; about {MISSING_SHARE:.0%} of prices "
        "are empty.",
        f"`users.csv`: `user_id,age,gender,region`; about {MISSING_SHARE:.0%} of ages are empty.",
        "`interests.csv.gz`: the ground truth, `user_id,month,category,share`: the "
        "distribution over categories that the user's sessions were drawn from that month "
        "(seasons included), for the months the user was active; shares below "
        f"{MIN_SHARE} are left out, so a month's shares sum to a little under 1.",
    ]


def _mechanism_notes() -> list[str]:
    groups = "; ".join(f"{g}: {', '.join(r[0] for r in TAXONOMY if r[1] == g)}" for g in GROUPS)
    seasonal = ", ".join(f"{row[0]} (peak {_month_name(row[3])})" for row in TAXONOMY if row[3])
    return [
        f"Categories ({len(CATEGORIES)}) come in related groups: {groups}.",
        f"Each user starts with 2-4 core categories holding {CORE_MASS:.0%} of their interest, "
        "further cores likelier within an already chosen group; age, gender and region tilt "
        "the choice. The baby group starts rare: it comes mostly from the life stage.",
        f"Drift: each month {DRIFT_RATE[0]:.0%}-{DRIFT_RATE[1]:.0%} (per user) of the interest "
        "moves toward the user's own preferred categories within each group; group totals "
        "stay.",
        f"New interests: each month a user takes up a new category with probability "
        f"{NEW_INTEREST_RATE:.0%}, at {NEW_INTEREST_MASS:.0%} of their interest.",
        f"Seasons multiply interests by month of year: {seasonal}.",
        f"Life stage: about {LIFE_STAGE_SHARE:.0%} of users, mostly aged 25-40, put "
        f"{BABY_WEIGHT:.0%} of their interest on baby_care from some month (possibly before "
        f"the period), moving {LIFE_STAGE_BABY_MONTHS[0]}-{LIFE_STAGE_BABY_MONTHS[1]} months "
        f"later to {TODDLER_WEIGHT:.0%} on toddler_toys and kids_clothing.",
        f"Activity: {ALREADY_ACTIVE_SHARE:.0%} of users are active from the start, the others "
        f"join in a uniform month; {CHURN_SHARE:.0%} stop in a uniform month from joining on. "
        "Sessions "
        "per month are Poisson around a log-normal personal rate (busier in November and "
        "December). A session has one category drawn from the month's interests and "
        f"1 + Poisson({EXTRA_VIEWS_PER_SESSION:g}) views.",
        f"Items: within a category popularity is Zipf (exponent {ZIPF_EXPONENT}) times a life "
        f"cycle; {PRE_PERIOD_SHARE:.0%} of items were launched before the period, the rest "
        "launch through it, ramp up over two months and fade with a lifetime of "
        f"{ITEM_LIFETIME_MONTHS[0]:g}-{ITEM_LIFETIME_MONTHS[1]:g} months.",
        "Brands belong to a group; each user has a favourite brand per group and weights it "
        f"by 1 + loyalty (exponential over users, mean {LOYALTY_MEAN:g}). Prices are "
        "log-normal around a category median times a brand premium.",
        f"Funnel: {CART_RATE:.0%} of views lead to a cart, {PURCHASE_GIVEN_CART:.0%} of carts "
        f"to a purchase; only {REPEAT_PURCHASE_KEPT:.0%} of repeat purchases of an item are "
        "kept.",
    ]


def _month_name(peak: float) -> str:
    """5 → "May"; 5.5 → "May-Jun" (a peak between two months)."""
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    month = int(peak)
    name = names[(month - 1) % 12]
    return name if peak == month else f"{name}-{names[month % 12]}"
