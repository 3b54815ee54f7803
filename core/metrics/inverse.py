"""Inverse-design errors between target and achieved property values (paper B.7), and the
least-squares slope of achieved against target (1 = follows the target, 0 = ignores it: a low
error alone can come from answering the data mean when the targets sit near it).

Pairs where either value is NaN (e.g. a property calculation that failed) are left out by
default (`nan="omit"`); `nan="raise"` makes them an error. A scalar target is broadcast
to all achieved values (one target, many generated samples).
"""

from __future__ import annotations

import numpy as np

from core.metrics.structures import MetricInputError


def _paired(target, achieved, nan: str) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast, check and NaN-filter the two arrays; returns 1-D finite pairs."""
    if nan not in ("omit", "raise"):
        raise MetricInputError(f"nan must be 'omit' or 'raise', not {nan!r}")
    t = np.asarray(target, dtype=float)
    y = np.asarray(achieved, dtype=float)
    try:
        t, y = np.broadcast_arrays(t, y)
    except ValueError:
        raise MetricInputError(f"target shape {t.shape} does not match achieved shape {y.shape}") from None
    t, y = t.ravel(), y.ravel()
    if t.size == 0:
        raise MetricInputError("no values given")
    if np.isinf(t).any() or np.isinf(y).any():
        raise MetricInputError("values contain inf")
    missing = np.isnan(t) | np.isnan(y)
    if missing.any():
        if nan == "raise":
            raise MetricInputError(f"{int(missing.sum())} of {t.size} pairs contain NaN")
        t, y = t[~missing], y[~missing]
        if t.size == 0:
            raise MetricInputError(f"all {missing.size} pairs contain NaN")
    return t, y


def mae(target, achieved, nan: str = "omit") -> float:
    """Mean absolute error, in the units of the property."""
    t, y = _paired(target, achieved, nan)
    return float(np.mean(np.abs(y - t)))


def rmse(target, achieved, nan: str = "omit") -> float:
    """Root-mean-square error, in the units of the property."""
    t, y = _paired(target, achieved, nan)
    return float(np.sqrt(np.mean((y - t) ** 2)))


def mape(target, achieved, nan: str = "omit") -> float:
    """Mean absolute percentage error, 100 · mean(|y - t| / |t|), in percent; targets must be non-zero."""
    t, y = _paired(target, achieved, nan)
    if (t == 0).any():
        raise MetricInputError("MAPE is undefined for a target of 0")
    return float(100.0 * np.mean(np.abs(y - t) / np.abs(t)))


def slope(target, achieved, nan: str = "omit") -> float:
    """Least-squares slope of achieved on target (property units per property unit); needs at
    least two distinct targets."""
    t, y = _paired(target, achieved, nan)
    if np.ptp(t) == 0:
        raise MetricInputError("a slope needs at least two distinct targets")
    dt = t - t.mean()
    return float(np.dot(dt, y - y.mean()) / np.dot(dt, dt))


def inverse_errors(target, achieved) -> dict[str, float]:
    """MAE, RMSE, MAPE (%), slope and counts, NaN pairs omitted:
    {"mae", "rmse", "mape", "slope", "n", "n_missing"}; MAPE and slope are NaN where undefined
    (a target of 0; fewer than two distinct targets)."""
    t, y = _paired(target, achieved, "omit")
    n_all = np.broadcast(np.asarray(target), np.asarray(achieved)).size
    out = {"mae": mae(t, y), "rmse": rmse(t, y), "n": int(t.size), "n_missing": int(n_all - t.size)}
    out["mape"] = mape(t, y) if (t != 0).all() else float("nan")
    out["slope"] = slope(t, y) if np.ptp(t) > 0 else float("nan")
    return out
