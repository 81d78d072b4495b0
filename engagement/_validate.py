"""One place that words every argument error the same way.

Every refusal names the argument, how many values are bad (of how many) and shows
an example, so the analyst can find the offending rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "check_argument",
    "check_count",
    "check_counts_le",
    "check_nonnegative",
    "check_confidence",
    "numeric_values",
    "check_range",
    "check_whole",
]


def check_argument(param: str, options: Iterable[Any], value: Any) -> None:
    """Raise a ValueError if ``value`` is not one of ``options``."""
    options = list(options)
    if value not in options:
        raise ValueError(f"`{param}` must be one of {options}, got {value!r}.")


def _example(values: np.ndarray, mask: np.ndarray) -> str:
    bad = values[mask]
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in bad[:3])
    return shown


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float in (0, 1) or raise."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise ValueError(f"`confidence` must be a number in (0, 1), got {confidence!r}.")
    if not 0 < float(confidence) < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")
    return float(confidence)


def check_count(value: Any, name: str) -> int:
    """Return ``value`` as a non-negative ``int`` or raise naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a whole non-negative number, got {value!r}.")
    if isinstance(value, float) and np.isnan(value):
        raise ValueError(f"`{name}` is missing (NaN); a count must be known.")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"`{name}` must be a whole number, got {value!r}.")
    if number < 0:
        raise ValueError(f"`{name}` must not be negative, got {value!r}.")
    return int(number)


def check_nonnegative(value: Any, name: str) -> float:
    """Return ``value`` as a non-negative finite float or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a non-negative number, got {value!r}.")
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"`{name}` is missing (NaN).")
    if value < 0 or not np.isfinite(value):
        raise ValueError(f"`{name}` must be a finite non-negative number, got {value!r}.")
    return value


def check_counts_le(small: int, small_name: str, big: int, big_name: str) -> None:
    """Refuse a count that exceeds the count it is part of (clicks > impressions)."""
    if small > big:
        raise ValueError(
            f"`{small_name}` ({small:,}) cannot exceed `{big_name}` ({big:,}): "
            f"they are part of a whole."
        )


def numeric_values(values: Any, name: str) -> tuple[np.ndarray, int]:
    """Turn a list, array or Series into float64 values with missing values removed.

    Timedeltas become seconds. Returns ``(values, n_missing)``. Non-numeric entries
    are refused (not coerced to missing), with a count and an example.
    """
    if isinstance(values, (str, bytes)) or np.isscalar(values):
        raise ValueError(f"`{name}` must be a sequence of values (list, array or Series), got {values!r}.")
    if isinstance(values, pd.Series):
        series = values.reset_index(drop=True)
    elif isinstance(values, (np.ndarray, pd.Index, pd.api.extensions.ExtensionArray)):
        series = pd.Series(values)
    else:
        series = pd.Series(list(values))
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        out = series.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
    elif pd.api.types.is_bool_dtype(series.dtype):
        raise ValueError(f"`{name}` holds booleans; pass numbers (e.g. 0/1 counts) instead.")
    elif pd.api.types.is_numeric_dtype(series.dtype):
        out = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        missing = series.isna().to_numpy()
        coerced = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = np.isnan(coerced) & ~missing
        if bad.any():
            raw = series.to_numpy(dtype=object)
            raise ValueError(
                f"`{name}`: {int(bad.sum()):,} of {len(series):,} values are not numbers "
                f"(e.g. {_example(raw, bad)})."
            )
        out = coerced
    if np.isinf(out).any():
        bad = np.isinf(out)
        raise ValueError(
            f"`{name}`: {int(bad.sum()):,} of {len(out):,} values are infinite (e.g. {_example(out, bad)})."
        )
    missing = np.isnan(out)
    return out[~missing], int(missing.sum())


def check_range(values: np.ndarray, name: str, low: float, high: float, what: str = "") -> None:
    """Refuse values outside ``[low, high]``, naming how many and an example."""
    bad = (values < low) | (values > high)
    if bad.any():
        hint = f" {what}" if what else ""
        raise ValueError(
            f"`{name}`: {int(bad.sum()):,} of {len(values):,} values are outside "
            f"{low:g}..{high:g} (e.g. {_example(values, bad)}).{hint}"
        )


def check_whole(values: np.ndarray, name: str, what: str = "") -> None:
    """Refuse non-integer values (7.5 as an NPS answer), naming how many and an example."""
    bad = values != np.floor(values)
    if bad.any():
        hint = f" {what}" if what else ""
        raise ValueError(
            f"`{name}`: {int(bad.sum()):,} of {len(values):,} values are not whole numbers "
            f"(e.g. {_example(values, bad)}).{hint}"
        )


def aligned_clusters(values: Any, clusters: Any, name: str, cluster_name: str) -> np.ndarray:
    """The cluster (respondent, customer, visitor) of each non-missing value of ``values``, as text.

    ``clusters`` must give one cluster per value, none missing: an answer without its respondent cannot be
    placed, and is refused rather than dropped.
    """
    series = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(list(values))
    keys = clusters.reset_index(drop=True) if isinstance(clusters, pd.Series) else pd.Series(list(clusters))
    if len(keys) != len(series):
        raise ValueError(f"`{cluster_name}` must name one per value of `{name}`: {len(keys):,} for "
                         f"{len(series):,} values.")
    missing = keys.isna().to_numpy()
    if missing.any():
        raise ValueError(f"`{cluster_name}`: {int(missing.sum()):,} of {len(keys):,} are missing (e.g. at "
                         f"position {int(np.flatnonzero(missing)[0])}); every value needs its {cluster_name[:-1]}.")
    return keys[~series.isna().to_numpy()].astype(str).to_numpy()
