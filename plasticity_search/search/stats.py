"""Paired comparisons of rules measured on the same instances (tasks x seeds, same data and initial weights).

``paired_difference(a, b)`` is the mean of ``a_i - b_i`` over instances with a Student-t confidence interval; it is
what every result of this tool states next to its baselines ("Δ vs FA +0.41 [+0.37, +0.45], 64 instances").
A rule with a non-finite instance (diverged weights or outputs) has no difference: it is reported as diverged.
Instances where only the reference diverged are left out of the difference (``n`` counts the pairs used); a
reference that diverged on every instance leaves none, and the comparison reads diverged as well.
"""
from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95


def t_quantile(df: int, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile (``scipy.stats.t``), normal for large ``df``."""
    if df < 1:
        return math.inf
    from scipy.stats import t
    return float(t.ppf(0.5 + level / 2, df))


def mean_and_se(x) -> tuple[float, float, int]:
    """(mean, standard error, n) of the finite values of ``x`` (se is inf for fewer than 2)."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.inf, 0
    se = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return float(np.mean(x)), se, n


def paired_difference(a, b, level: float = LEVEL) -> dict:
    """``a - b`` over paired instances: {delta, lo, hi, se, n, wins (fraction a > b), diverged, ref_diverged}.

    ``a`` and ``b`` are per-instance fitness (higher is better) in the same order. If ``a`` has non-finite
    instances, ``diverged`` counts them and delta/lo/hi are None (a rule that diverges does not beat anything).
    ``ref_diverged`` counts the non-finite instances of ``b``; they are left out of the difference (``n`` counts the
    pairs used), and if no pair is left, delta/lo/hi are None, ``n`` is 0 and :func:`verdict` says 'diverged'.
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired difference needs equal instances, got {a.shape} and {b.shape}")
    bad_a = int(np.sum(~np.isfinite(a)))
    bad_b = int(np.sum(~np.isfinite(b)))
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(np.sum(ok))
    if bad_a or n == 0:
        return {"delta": None, "lo": None, "hi": None, "se": None, "n": int(a.size) if bad_a else 0, "wins": None,
                "diverged": bad_a, "ref_diverged": bad_b}
    d = a[ok] - b[ok]
    mean = float(np.mean(d))
    se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    half = t_quantile(n - 1, level) * se if n > 1 else math.inf
    fin = lambda x: x if math.isfinite(x) else None  # noqa: E731
    return {"delta": mean, "lo": fin(mean - half), "hi": fin(mean + half), "se": fin(se), "n": n,
            "wins": float(np.mean(d > 0)), "diverged": 0, "ref_diverged": bad_b}


def verdict(p: dict) -> str:
    """'better', 'worse', 'tie' (interval covers 0) or 'diverged' (the rule, or the reference on every instance)
    for a :func:`paired_difference` result."""
    if _diverged(p):
        return "diverged"
    lo, hi = p.get("lo"), p.get("hi")
    if lo is not None and lo > 0:
        return "better"
    if hi is not None and hi < 0:
        return "worse"
    return "tie"


def format_delta(p: dict | None) -> str:
    """``+0.412 [+0.371, +0.452]`` (or ``diverged``, or ``reference diverged`` where it did on every instance)
    for tables."""
    if not p:
        return "-"
    if p.get("diverged"):
        return "diverged"
    if _diverged(p):
        return "reference diverged"
    if p.get("delta") is None:
        return "-"
    lo, hi = p.get("lo"), p.get("hi")
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    return f"{p['delta']:+.3f}{ci}"


def ref_all_diverged(p: dict) -> bool:
    """The reference diverged on every instance: no pair left (a file written before ``ref_diverged`` existed
    says so by a missing difference with instances and no divergence of the rule)."""
    return (not p.get("diverged") and p.get("delta") is None
            and bool(p.get("ref_diverged") or p.get("n")))


def left_out(p: dict) -> int:
    """Instances left out of a difference because the reference diverged there (0 without a difference)."""
    return int(p.get("ref_diverged") or 0) if p.get("delta") is not None else 0


def _diverged(p: dict) -> bool:
    """The rule diverged, or the reference did on every instance (no pair left to compare)."""
    return bool(p.get("diverged")) or ref_all_diverged(p)


def format_delta_verdict(p: dict) -> str:
    """``+0.412 [+0.371, +0.452] better`` (or ``diverged``, once; plus how many pairs the reference's divergence
    left out) for tables."""
    v = verdict(p)
    k = left_out(p)
    return (format_delta(p) if v == "diverged" else f"{format_delta(p)} {v}") + (
        f" ({k} where the reference diverged left out)" if k else "")


__all__ = ["paired_difference", "mean_and_se", "t_quantile", "verdict", "format_delta", "format_delta_verdict",
           "ref_all_diverged", "left_out", "LEVEL"]
