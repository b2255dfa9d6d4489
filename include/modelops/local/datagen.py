"""Deterministic synthetic data for the example models, their drift scenarios and broken files.

The platform needs realistic daily batches to train on, named ways for those batches to drift
(to exercise monitoring and retraining) and named ways for files to be broken (to exercise
validation). Everything is a pure function of its arguments: the same generator, day, row count,
scenario and seed give the same frame on every machine, so a re-run task writes the same bytes.
Seeds come from ``numpy.random.SeedSequence`` over stable integers (CRC32 of names, the day's
ordinal), never from Python's ``hash()``, which is salted per process.

Each generator draws features, applies the scenario's feature changes, draws the label from the
(possibly shifted) concept, then applies the scenario's data bugs. Features, label noise and
scenario changes come from separate random streams, so a scenario changes only what it claims:
``concept_shift`` keeps every feature of the normal batch and redraws no noise.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelops.batches import to_csv_bytes

log = logging.getLogger(__name__)

#: A generator builds one day's batch: ``(day, rows, scenario, seed) -> DataFrame``.
Generator = Callable[[datetime.date, int, "str | None", int], pd.DataFrame]


# --------------------------------------------------------------------------------------------
# Random streams
# --------------------------------------------------------------------------------------------


def _stable_int(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _rng(generator: str, day: datetime.date, seed: int, stream: str) -> np.random.Generator:
    """One independent stream per (generator, day, seed, purpose): scenarios reuse the others."""
    entropy = [_stable_int(generator), day.toordinal(), seed, _stable_int(stream)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _event_times(
    rng: np.random.Generator, day: datetime.date, rows: int, weights: np.ndarray | None = None
) -> pd.Series:
    """Sorted UTC timestamps within ``day`` (second resolution, so CSV round trips are exact)."""
    if weights is None:
        seconds = rng.integers(0, 86_400, size=rows)
    else:
        hours = rng.choice(24, size=rows, p=weights / weights.sum())
        seconds = hours * 3600 + rng.integers(0, 3600, size=rows)
    seconds = np.sort(seconds)
    start = pd.Timestamp(day.isoformat(), tz="UTC")
    return pd.Series(start + pd.to_timedelta(seconds, unit="s"))


def _ids(prefix: str, day: datetime.date, rows: int) -> pd.Series:
    """``<prefix><YYYYMMDD>-<i:06d>``: unique within a day and, through the date, across days."""
    numbers = pd.Series(np.arange(rows)).astype(str).str.zfill(6)
    return f"{prefix}{day:%Y%m%d}-" + numbers


# --------------------------------------------------------------------------------------------
# Churn
# --------------------------------------------------------------------------------------------

CONTRACTS = ("month-to-month", "one-year", "two-year")
PLANS = ("basic", "standard", "premium")
PAYMENT_METHODS = ("credit_card", "bank_transfer", "electronic_check", "mailed_check")
REGIONS = ("north", "south", "east", "west")
_PLAN_PRICE = {"basic": (28.0, 6.0), "standard": (62.0, 8.0), "premium": (98.0, 9.0), "enterprise": (112.0, 5.0)}

CHURN_SCENARIOS: dict[str, str] = {
    "covariate_shift": "monthly_charges rise by about 25% (a price increase); the label still follows the same rules",
    "new_category": "a new plan value 'enterprise' appears in about 15% of rows",
    "concept_shift": "features unchanged, but churn is now driven by price and engagement rather than contract and support",
    "unit_change": "data bug: monthly_charges arrive in cents (x100)",
    "null_column": "data bug: avg_session_minutes is entirely null",
}


def _churn_score(f: Mapping[str, np.ndarray]) -> np.ndarray:
    """Log-odds of churn, deliberately non-linear so tree models beat linear ones.

    Month-to-month customers leave early; contract customers leave at renewal months; support
    calls matter past thresholds; engagement is U-shaped (idle users and frustrated power users).
    """
    contract, tenure, support = f["contract"], f["tenure_months"], f["support_calls"]
    plan, monthly, session = f["plan"], f["monthly_charges"], f["avg_session_minutes"]
    m2m = contract == "month-to-month"
    renewal_one = (contract == "one-year") & (tenure > 0) & np.isin(tenure % 12, [0, 11])
    renewal_two = (contract == "two-year") & (tenure > 0) & np.isin(tenure % 24, [0, 23])
    score = np.full(len(tenure), -2.6)
    # Month-to-month: churn peaks when the introductory discount ends (months 3-6), then fades.
    score += np.where(
        m2m, 0.3 + 3.0 * np.exp(-(((tenure - 4.5) / 3.5) ** 2)), np.where(contract == "one-year", -0.7, -2.0)
    )
    score += 2.6 * renewal_one + 3.0 * renewal_two
    score += 1.5 * (support >= 4) + 1.0 * (support >= 7) - 0.5 * np.isin(support, [1, 2])
    score += np.where(m2m, 1.2, 0.2) * (f["payment_method"] == "electronic_check")
    # Price hurts only where leaving is cheap.
    score += 0.05 * np.clip(monthly - 70.0, 0.0, None) * m2m
    score += np.where(np.isnan(session), 0.4, 1.5 * (session < 7.0) + 1.4 * (session > 35.0))
    score += 0.8 * (np.isin(plan, ["premium", "enterprise"]) & (support >= 3))
    return score


def _churn_score_shifted(f: Mapping[str, np.ndarray]) -> np.ndarray:
    """After a competitor's cheap offer: price and low engagement drive churn, contracts protect less."""
    monthly, session, tenure = f["monthly_charges"], f["avg_session_minutes"], f["tenure_months"]
    score = np.full(len(tenure), -2.8)
    score += 0.045 * (monthly - 60.0)
    score += np.where(np.isnan(session), 0.5, 1.6 * (session < 12.0))
    score += 0.9 * (f["region"] == "south")
    score += 1.0 * (f["support_calls"] >= 4)
    score -= 0.6 * (f["payment_method"] == "electronic_check")
    score += 0.012 * tenure
    return score


def _churn_prices(rng: np.random.Generator, plan: np.ndarray) -> np.ndarray:
    mean = np.array([_PLAN_PRICE[p][0] for p in plan])
    spread = np.array([_PLAN_PRICE[p][1] for p in plan])
    return np.clip(mean + spread * rng.standard_normal(len(plan)), 18.0, 120.0).round(2)


def _with_nulls(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    out = values.astype(object if values.dtype.kind in "OUT" else float)
    out[rng.random(len(values)) < rate] = None if out.dtype == object else np.nan
    return out


def generate_churn(day: datetime.date, rows: int, scenario: str | None = None, seed: int = 0) -> pd.DataFrame:
    """One day of subscription customers with a ~25% churn label that a linear model underfits."""
    rng = _rng("churn", day, seed, "features")
    contract = rng.choice(CONTRACTS, size=rows, p=[0.52, 0.26, 0.22])
    shape = np.select([contract == "month-to-month", contract == "one-year"], [1.3, 2.2], 3.2)
    scale = np.select([contract == "month-to-month", contract == "one-year"], [13.0, 12.0], 13.0)
    tenure = np.clip(np.rint(rng.gamma(shape, scale)), 0, 72).astype("int64")
    plan = rng.choice(PLANS, size=rows, p=[0.42, 0.38, 0.20]).astype(object)
    monthly = _churn_prices(rng, plan)
    overdispersion = rng.gamma(2.0, 0.5, size=rows)
    lam = (1.0 + 0.9 * (plan == "basic") + 1.3 * (tenure < 6) + 0.5 * (contract == "month-to-month")) * overdispersion
    support = np.clip(rng.poisson(lam), 0, 15).astype("int64")
    session_mu = np.log(14.0) + 0.2 * (plan == "premium") - 0.25 * (support >= 4)
    session = np.clip(rng.lognormal(session_mu, 0.6), 0.1, None).round(1)
    session[rng.random(rows) < 0.04] = np.nan
    payment = _with_nulls(rng, rng.choice(PAYMENT_METHODS, size=rows, p=[0.32, 0.24, 0.30, 0.14]), 0.02)
    region = rng.choice(REGIONS, size=rows, p=[0.28, 0.24, 0.26, 0.22])
    charge_noise = 1.0 + 0.04 * rng.standard_normal(rows)
    total_missing = rng.random(rows) < 0.008
    event_time = _event_times(rng, day, rows)
    label_draw = _rng("churn", day, seed, "label").random(rows)

    scenario_rng = _rng("churn", day, seed, f"scenario:{scenario}")
    if scenario == "covariate_shift":
        monthly = (monthly * 1.25).round(2)
    elif scenario == "new_category":
        chosen = scenario_rng.random(rows) < 0.15
        plan[chosen] = "enterprise"
        monthly[chosen] = _churn_prices(scenario_rng, plan[chosen])

    total = (tenure * monthly * charge_noise).round(2)
    total[(tenure == 0) | total_missing] = np.nan

    features = {
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support,
        "avg_session_minutes": session,
        "contract": contract,
        "plan": plan,
        "payment_method": payment,
        "region": region,
    }
    score = _churn_score_shifted(features) if scenario == "concept_shift" else _churn_score(features)
    churned = (label_draw < _sigmoid(score)).astype("int64")

    if scenario == "unit_change":
        features["monthly_charges"] = (monthly * 100).round(0)
    elif scenario == "null_column":
        features["avg_session_minutes"] = np.full(rows, np.nan)

    frame = pd.DataFrame(
        {"customer_id": _ids("C", day, rows), "event_time": event_time, **features, "churned": churned}
    )
    for column in ("contract", "plan", "payment_method", "region"):
        frame[column] = frame[column].astype("str")
    return frame


# --------------------------------------------------------------------------------------------
# Delivery time
# --------------------------------------------------------------------------------------------

COURIER_TYPES = ("bike", "scooter", "car")
WEATHER = ("clear", "rain", "snow")
_SPEED_KMH = {"bike": 16.0, "scooter": 24.0, "car": 28.0, "drone": 45.0}
# Orders cluster at lunch and dinner.
_ORDER_HOURS = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 5, 9, 12, 10, 5, 4, 5, 8, 12, 12, 9, 5, 3, 2], dtype=float)

DELIVERY_SCENARIOS: dict[str, str] = {
    "covariate_shift": "orders come from further away: distance_km about 35% longer",
    "new_category": "a new courier_type value 'drone' appears in about 15% of rows",
    "concept_shift": "features unchanged, but roadworks slow every courier and move the rush hours",
    "unit_change": "data bug: distance_km arrives in metres (x1000)",
    "null_column": "data bug: distance_km is entirely null",
}


def _delivery_minutes(f: Mapping[str, np.ndarray], noise: np.ndarray, delay: np.ndarray, shifted: bool) -> np.ndarray:
    """Prep time plus travel: rush hours slow cars, bikes tire over distance, snow slows all."""
    distance, courier, hour, weather = f["distance_km"], f["courier_type"], f["hour_of_day"], f["weather"]
    speed = np.array([_SPEED_KMH[c] for c in courier])
    rush = np.isin(hour, [8, 9, 17, 18]) if shifted else np.isin(hour, [12, 13, 18, 19, 20])
    speed = np.where(rush & (courier == "car"), speed * 0.55, np.where(rush, speed * 0.85, speed))
    speed = np.where((courier == "bike") & (distance > 4.0), speed / (1.0 + 0.12 * (distance - 4.0)), speed)
    if shifted:
        speed = speed * 0.7
    travel = 60.0 * distance / speed
    travel = travel * np.select(
        [weather == "snow", weather == "rain"], [np.where(courier == "bike", 1.9, 1.5), 1.15], 1.0
    )
    prep = 8.0 + 1.6 * f["items"]
    return np.clip(prep + travel + noise + delay, 5.0, None).round(1)


def generate_delivery_time(day: datetime.date, rows: int, scenario: str | None = None, seed: int = 0) -> pd.DataFrame:
    """One day of food-delivery orders with a non-linear duration in minutes."""
    rng = _rng("delivery_time", day, seed, "features")
    ordered_at = _event_times(rng, day, rows, weights=_ORDER_HOURS)
    hour = ordered_at.dt.hour.to_numpy().astype("int64")
    distance = np.clip(rng.gamma(2.0, 2.2, size=rows), 0.3, 30.0).round(2)
    items = np.clip(1 + rng.poisson(1.6, size=rows), 1, 20).astype("int64")
    bike_share = np.select([distance < 3.0, distance < 8.0], [0.5, 0.2], 0.03)
    u = rng.random(rows)
    courier = np.where(u < bike_share, "bike", np.where(u < bike_share + 0.4, "scooter", "car")).astype(object)
    weather = rng.choice(WEATHER, size=rows, p=[0.7, 0.22, 0.08])
    label_rng = _rng("delivery_time", day, seed, "label")
    noise = 3.0 * label_rng.standard_normal(rows)
    delay = np.where(label_rng.random(rows) < 0.05, label_rng.exponential(10.0, rows), 0.0)

    scenario_rng = _rng("delivery_time", day, seed, f"scenario:{scenario}")
    if scenario == "covariate_shift":
        distance = (distance * 1.35).round(2)
    elif scenario == "new_category":
        courier[scenario_rng.random(rows) < 0.15] = "drone"

    features = {
        "distance_km": distance,
        "items": items,
        "hour_of_day": hour,
        "courier_type": courier,
        "weather": weather,
    }
    minutes = _delivery_minutes(features, noise, delay, shifted=scenario == "concept_shift")

    if scenario == "unit_change":
        features["distance_km"] = (distance * 1000).round(0)
    elif scenario == "null_column":
        features["distance_km"] = np.full(rows, np.nan)

    frame = pd.DataFrame(
        {"order_id": _ids("O", day, rows), "ordered_at": ordered_at, **features, "delivery_minutes": minutes}
    )
    for column in ("courier_type", "weather"):
        frame[column] = frame[column].astype("str")
    return frame


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSchema:
    """What ``corrupt_batch`` needs to know to break a generator's batch in a realistic way."""

    id_column: str
    timestamp_column: str
    target: str
    required_numeric: str  # a non-nullable numeric feature
    unit_column: str
    unit_factor: float
    droppable: str  # a feature whose absence the suite must notice


GENERATORS: dict[str, Generator] = {"churn": generate_churn, "delivery_time": generate_delivery_time}
SCENARIOS: dict[str, dict[str, str]] = {"churn": CHURN_SCENARIOS, "delivery_time": DELIVERY_SCENARIOS}
SCHEMAS: dict[str, BatchSchema] = {
    "churn": BatchSchema("customer_id", "event_time", "churned", "tenure_months", "monthly_charges", 100.0, "region"),
    "delivery_time": BatchSchema(
        "order_id", "ordered_at", "delivery_minutes", "items", "distance_km", 1000.0, "weather"
    ),
}


def generate_batch(
    generator: str, day: datetime.date, rows: int, scenario: str | None = None, seed: int = 0
) -> pd.DataFrame:
    """The batch for ``day``: identical for identical arguments, whatever the machine or process."""
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator '{generator}'; known generators: {sorted(GENERATORS)}")
    if scenario is not None and scenario not in SCENARIOS[generator]:
        raise ValueError(
            f"unknown scenario '{scenario}' for generator '{generator}'; known scenarios: {sorted(SCENARIOS[generator])}"
        )
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if isinstance(day, datetime.datetime):  # a datetime is a date too; use its calendar day
        day = day.date()
    frame = GENERATORS[generator](day, rows, scenario, seed)
    log.debug("generated %s rows of %s for %s (scenario=%s, seed=%s)", rows, generator, day, scenario, seed)
    return frame


# --------------------------------------------------------------------------------------------
# Corruptions
# --------------------------------------------------------------------------------------------

CORRUPTIONS: dict[str, str] = {
    "nulls_in_required": "about 5% nulls in a non-nullable numeric feature",
    "unit_change": "a numeric feature multiplied by 100 or 1000 (cents, metres)",
    "new_column": "an extra column nobody declared",
    "missing_column": "a declared feature is absent",
    "truncated_file": "CSV bytes cut in the middle of a row (returns bytes)",
    "wrong_type": "strings such as '$45.10' and 'n/a' in a numeric column",
    "duplicate_ids": "about 5% of rows repeat another row's id",
    "out_of_range": "negative values in a non-negative numeric feature",
}


def _schema_for(df: pd.DataFrame, generator: str | None) -> BatchSchema:
    if generator is not None:
        if generator not in SCHEMAS:
            raise ValueError(f"unknown generator '{generator}'; known generators: {sorted(SCHEMAS)}")
        return SCHEMAS[generator]
    for schema in SCHEMAS.values():
        if schema.id_column in df.columns:
            return schema
    raise ValueError(f"cannot tell which generator made a frame with columns {list(df.columns)}; pass generator=")


def corrupt_batch(df: pd.DataFrame, kind: str, seed: int = 0, *, generator: str | None = None) -> pd.DataFrame | bytes:
    """A broken copy of ``df`` (never modified) that validation must refuse; the generator is inferred from the id column."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption '{kind}'; known kinds: {sorted(CORRUPTIONS)}")
    schema = _schema_for(df, generator)
    rng = np.random.default_rng(np.random.SeedSequence([_stable_int(kind), seed]))
    out = df.copy()
    n = len(out)
    some = rng.random(n) < 0.05
    some[rng.integers(0, n)] = True  # at least one row, however small the batch

    if kind == "nulls_in_required":
        out[schema.required_numeric] = out[schema.required_numeric].astype("float64").mask(some)
    elif kind == "unit_change":
        out[schema.unit_column] = (out[schema.unit_column] * schema.unit_factor).round(6)
    elif kind == "new_column":
        out["promo_code"] = np.where(rng.random(n) < 0.5, "WELCOME10", "NONE")
    elif kind == "missing_column":
        out = out.drop(columns=[schema.droppable])
    elif kind == "truncated_file":
        return _truncate_csv(to_csv_bytes(out), rng)
    elif kind == "wrong_type":
        column = schema.unit_column
        text = out[column].map(lambda v: f"${v:.2f}").astype(object)
        text[rng.random(n) < 0.5] = "n/a"
        out[column] = out[column].astype(object).where(~some, text)
    elif kind == "duplicate_ids":
        if n < 2:
            raise ValueError("duplicate_ids needs at least 2 rows")
        some[0] = False  # row 0 always keeps its id, so every copy has an original to clash with
        ids = out[schema.id_column].to_numpy(dtype=object).copy()
        ids[some] = ids[rng.choice(np.flatnonzero(~some), size=int(some.sum()))]
        out[schema.id_column] = pd.Series(ids, index=out.index, dtype="str")
    elif kind == "out_of_range":
        out[schema.required_numeric] = out[schema.required_numeric].where(~some, -3)
    return out


def _truncate_csv(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut inside a data row, after its second field starts: what an interrupted upload leaves."""
    lines = data.splitlines(keepends=True)
    if len(lines) < 2:
        raise ValueError("need at least one data row to truncate")
    keep = int(rng.integers(1, len(lines)))  # header + keep-1 full rows, then a partial row
    partial = lines[keep]
    second_comma = partial.find(b",", partial.find(b",") + 1)
    cut = second_comma + 2 if second_comma > 0 else max(1, len(partial) // 2)
    return b"".join(lines[:keep]) + partial[:cut]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m modelops.local.datagen --generator churn --day 2026-11-01 --rows 100 > batch.csv``."""
    parser = argparse.ArgumentParser(
        prog="python -m modelops.local.datagen", description="Write one synthetic daily batch as CSV to stdout."
    )
    parser.add_argument(
        "--generator", choices=sorted(GENERATORS), help="which generator (a model config's data.generator)"
    )
    parser.add_argument("--day", type=datetime.date.fromisoformat, help="the batch's day, YYYY-MM-DD")
    parser.add_argument("--rows", type=int, default=1000, help="rows in the batch (default 1000)")
    parser.add_argument("--scenario", default=None, help="a named drift scenario (see --list)")
    parser.add_argument("--seed", type=int, default=0, help="extra seed; the same arguments give the same file")
    parser.add_argument("--corrupt", choices=sorted(CORRUPTIONS), default=None, help="break the batch on purpose")
    parser.add_argument("--list", action="store_true", help="list generators, scenarios and corruptions, then exit")
    args = parser.parse_args(argv)

    if args.list:
        for name in sorted(GENERATORS):
            print(name)
            for scenario, description in SCENARIOS[name].items():
                print(f"  --scenario {scenario}: {description}")
        print("corruptions:")
        for kind, description in CORRUPTIONS.items():
            print(f"  --corrupt {kind}: {description}")
        return 0
    if args.generator is None or args.day is None:
        parser.error("--generator and --day are required")
    try:
        frame = generate_batch(args.generator, args.day, args.rows, scenario=args.scenario, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    result = corrupt_batch(frame, args.corrupt, seed=args.seed, generator=args.generator) if args.corrupt else frame
    sys.stdout.buffer.write(result if isinstance(result, bytes) else to_csv_bytes(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
