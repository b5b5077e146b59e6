"""Text renderings of results, shared by the CLI and anything else that prints them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from penchant.params import parse_duration

#: Horizon suffix the runner gives results restricted to light users.
LIGHT = " light"


def horizon_order(horizon: str) -> tuple[bool, float, str]:
    """Horizons by length (7d before 30d), light-user results after the others."""
    light = horizon.endswith(LIGHT)
    try:
        seconds = parse_duration(horizon.removesuffix(LIGHT)).total_seconds()
    except ValueError:
        seconds = math.inf
    return light, seconds, horizon


def headline(results: Mapping[str, Mapping[str, float]]) -> str:
    """A model's one-figure summary for run lists: NDCG at the largest k at its longest
    horizon (all users), e.g. ``0.1753 ndcg@20 (90d)``; empty when it has none."""
    plain = sorted((h for h in results if not h.endswith(LIGHT)), key=horizon_order)
    if not plain:
        return ""
    values = results[plain[-1]]
    ks = sorted((int(m.split("@")[1]), m) for m in values if m.startswith("ndcg@"))
    if not ks or values[ks[-1][1]] is None:
        return ""
    return f"{values[ks[-1][1]]:.4f} {ks[-1][1]} ({plain[-1]})"


def metrics_table(metrics: Mapping[str, Any],
                  columns: Sequence[str] = ("ndcg@10", "ndcg@20", "recall@20"),
                  ) -> str:
    """Models as rows (the pipeline's model first), one column per horizon and metric."""
    results = metrics["results"]
    main = metrics.get("model")
    names = sorted(results, key=lambda n: (n != main, n))
    horizons = list(metrics["horizons"])
    wanted = [c for c in columns if any(c in results[n][h] for n in names for h in horizons)]
    header = ["model"] + [f"{h} {c}" for h in horizons for c in wanted]
    rows = [header]
    for name in names:
        row = [name + (" *" if name == main else "")]
        for h in horizons:
            for c in wanted:
                value = results[name][h].get(c)
                row.append("-" if value is None else f"{value:.4f}")
        rows.append(row)
    users = [f"{h}: {int(results[names[0]][h].get('users') or 0)} users" for h in horizons]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"cutoff {metrics['cutoff']}; evaluated " + ", ".join(users)
                 + "; * = the pipeline's model")
    if metrics.get("versus", {}).get("ratios"):
        lines += ["", versus_table(metrics["versus"], horizons, main)]
    if metrics.get("interests"):
        lines += ["", interests_table(metrics["interests"], horizons, main)]
    return "\n".join(lines)


def versus_table(versus: Mapping[str, Any], horizons: Sequence[str],
                 main: str | None) -> str:
    """The pipeline's model against each baseline: the ratio of their NDCG per horizon with
    its interval over resampled users, e.g. ``1.18× (1.05–1.32)``; an interval that
    excludes 1 is a lead (or a lag) that another draw of users would keep."""
    rows = [[name] + [ratio_cell(versus["ratios"][name].get(h, {})) for h in horizons]
            for name in sorted(versus["ratios"])]
    return (f"{versus['metric']} of {main or 'the model'} ÷ each baseline, with its "
            f"{level_text(versus['level'])} interval over resampled users\n"
            + table(rows, ["baseline", *horizons]))


def backtest_table(metrics: Mapping[str, Any]) -> str:
    """A backtest (:mod:`penchant.backtest`): the model's NDCG per cutoff, then every
    list's metrics pooled over the cutoffs and the pooled ratios to the baselines."""
    horizons = [h for h in metrics["horizons"] if not h.endswith(LIGHT)]
    metric = f"ndcg@{max(metrics['k'])}"
    rows = [[f"{c['cutoff']}"[:19], c["run"]]
            + [f"{c[metric][h]:.4f} ({c['users'][h]})" if c[metric][h] is not None
               else "-" for h in horizons] for c in metrics["cutoffs"]]
    users = {h: int(metrics["results"][metrics["model"]][h]["distinct_users"])
             for h in metrics["horizons"]}
    text = (f"{metric} of {metrics['model']} from each cutoff (users evaluated)\n"
            + table(rows, ["cutoff", "run", *horizons])
            + "\n\npooled over the cutoffs' evaluations (distinct users: "
            + ", ".join(f"{h} {u}" for h, u in users.items()) + ")\n"
            + metrics_table({**metrics, "horizons": horizons}))
    light = [h for h in metrics["horizons"] if h.endswith(LIGHT)]
    if light and metrics.get("versus", {}).get("ratios"):
        # Light users' own metrics would double the table's width; their ratios say more.
        text += "\n\nlight users only: " + versus_table(metrics["versus"], light,
                                                        metrics["model"])
    return text


def paired_runs_table(paired: Mapping[str, Any], first: str, second: str) -> str:
    """Two runs' NDCG per horizon as ``second ÷ first`` with its interval over the users
    both evaluated (:func:`penchant.significance.paired_runs`)."""
    rows = []
    for horizon, values in paired["ratios"].items():
        users = int(values["users"])
        counts = {int(values["first_users"]), int(values["second_users"])}
        note = "" if counts == {users} else (f" (of {int(values['first_users'])} and "
                                             f"{int(values['second_users'])})")
        rows.append([horizon, f"{users}{note}", ratio_cell(values)])
    return (f"{paired['metric']} of {second} ÷ {first}, with its "
            f"{level_text(paired['level'])} interval over the users both evaluated\n"
            + table(rows, ["horizon", "users", "ratio"]))


def level_text(level: float) -> str:
    """A confidence level as the tables print it: 0.95 → ``95 %``."""
    return f"{round(100 * level, 1):g} %"


def ratio_cell(values: Mapping[str, Any]) -> str:
    """``1.18× (1.05–1.32)``; an interval open above (the baseline scored nothing in some
    resamples) ends in ∞, and a baseline that scored nothing at all reads ``∞``. Values
    may be infinite or NaN (as :mod:`penchant.significance` returns them) or None (as
    metrics.json keeps them, so a ratio without a value is read from the difference: the
    model scored something)."""
    ratio, low, high = (_finite(values.get(key)) for key in ("ratio", "low", "high"))
    if ratio is None:
        return "∞" if (values.get("difference") or 0) > 0 else "-"
    if low is None:
        return f"{ratio:.2f}×"
    return f"{ratio:.2f}× ({low:.2f}–{'∞' if high is None else f'{high:.2f}'})"


def _finite(value: Any) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def interests_table(interests: Mapping[str, Any], horizons: Sequence[str],
                    main: str | None) -> str:
    """Forecasts of each user's category mix: JS divergence (lower is better) and top-3
    overlap (higher is better) per horizon, for the model and the persistence baselines."""
    names = sorted(interests, key=lambda n: (n != main, n))
    rows = [["interests"] + [f"{h} {m}" for h in horizons for m in ("js", "top3")]]
    for name in names:
        row = [name + (" *" if name == main else "")]
        for h in horizons:
            for m in ("js", "top3"):
                value = interests[name].get(h, {}).get(m)
                row.append("-" if value is None else f"{value:.4f}")
        rows.append(row)
    return table(rows[1:], rows[0])


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[("" if v is None else str(v)) for v in r]
                                        for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def compare_table(runs: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]],
                  metrics: Sequence[str] | None = ("ndcg", "recall", "hr", "users")) -> str:
    """Runs side by side: one row per horizon and metric, one column per run (``label``,
    its ``horizon → metric → value`` results) and, for two runs, the change from the first
    to the second, so a retrained run reads against the one before it. ``metrics`` names
    the metrics shown at every k (None: all)."""
    horizons = list(dict.fromkeys(h for _, results in runs for h in results))
    labels = [label for label, _ in runs]
    header = ["horizon", "metric", *labels] + (["change"] if len(runs) == 2 else [])
    rows = []
    for h in horizons:
        names = dict.fromkeys(m for _, results in runs for m in results.get(h, {})
                              if metrics is None or m.split("@")[0] in metrics)
        for metric in names:
            values = [results.get(h, {}).get(metric) for _, results in runs]
            row = [h, metric] + [_number(v, metric) for v in values]
            if len(runs) == 2:
                first, second = values
                row.append("-" if first is None or second is None
                           else _number(second - first, metric, signed=True))
            rows.append(row)
    return table(rows, header)


def _number(value: Any, metric: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    if metric.endswith("users"):
        return f"{value:+.0f}" if signed else f"{value:.0f}"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
