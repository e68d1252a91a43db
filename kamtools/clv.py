"""Customer lifetime value: the margin formula, contractual and repeat-purchase models.

Three ways to value a customer, from the simplest to the literature's models:

- :func:`simple` is the textbook margin multiple ``m r / (1 + d - r)``.
- :class:`ShiftedBetaGeometric` (sBG, Fader & Hardie 2007) models how long
  customers keep renewing a contract. It is fitted on cohort counts (how many
  are still active after each period) or on per-customer durations with
  right-censoring, projects survival and retention forward, and values
  customers by their discounted expected residual lifetime (DERL, Fader &
  Hardie 2010).
- :class:`BetaGeoModel` (BG/NBD, Fader, Hardie & Lee 2005) and
  :class:`GammaGammaModel` (Fader, Hardie & Lee 2005; Fader & Hardie 2013)
  model repeat purchasing without contracts: how often customers buy, whether
  they are still "alive", and how much they spend. Together they give a
  discounted CLV per customer.

:func:`summarise_transactions` turns a transaction log into the
frequency/recency/T/monetary-value summary these models need, with a
calibration/holdout split; :func:`holdout_metrics`,
:func:`calibration_holdout_table` and :func:`plot_calibration_holdout` judge
the predictions on the holdout, also for summaries computed elsewhere (SQL).
:func:`contract_renewals` turns the contracts table into the sBG's input;
:func:`plot_clv` draws values per customer with their intervals.

All three models are fitted by maximum likelihood (scipy, with analytic
gradients, on the log scale of the parameters), and identical summary rows are
grouped and weighted first, so a fit on a million customers takes seconds.
Standard errors come from the Hessian of the log-likelihood at the optimum.
Every CLV figure can come with an interval: the parameters are drawn from their
asymptotic normal distribution (on the log scale, so they stay positive) and
the figure is recomputed for each draw; the interval is the central
``level`` share of those draws. It describes the estimation uncertainty of the
*expected* value, not the much wider spread of one customer's actual future.

References
----------
- Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention.
  *Journal of Interactive Marketing*, 21(1), 76-90.
- Fader, P. S. & Hardie, B. G. S. (2010). Customer-base valuation in a
  contractual setting: the perils of ignoring heterogeneity. *Marketing
  Science*, 29(1), 85-93.
- Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers"
  the easy way: an alternative to the Pareto/NBD model. *Marketing Science*,
  24(2), 275-284.
- Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using
  iso-value curves for customer base analysis. *Journal of Marketing
  Research*, 42(4), 415-430.
- Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary
  value. Note, brucehardie.com/notes/025.
- Gupta, S. & Lehmann, D. R. (2003). Customers as assets. *Journal of
  Interactive Marketing*, 17(1), 9-24.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from kamtools.exceptions import DataWarning, ParameterError, SchemaError

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ShiftedBetaGeometric",
    "calibration_holdout_table",
    "contract_renewals",
    "holdout_metrics",
    "plot_calibration_holdout",
    "plot_clv",
    "simple",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "simulate_sbg",
    "summarise_transactions",
]

# --------------------------------------------------------------------------- helpers


def _check_level(level) -> float:
    try:
        level = float(level)
    except (TypeError, ValueError):
        level = float("nan")
    if not 0 < level < 1:
        raise ParameterError(f"level={level!r} must be between 0 and 1, e.g. 0.95 for 95% intervals.")
    return level


def _check_draws(n_draws) -> int:
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 20:
        raise ParameterError(f"n_draws={n_draws!r} must be a whole number of at least 20 (1000 is a good default).")
    return int(n_draws)


def _columns(df, wanted: dict, who: str) -> None:
    """Check that ``df`` is a DataFrame holding every column in ``wanted`` (argument -> column)."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{who}: expected a DataFrame, got {type(df).__name__}.")
    for arg, col in wanted.items():
        if col is None:
            continue
        if col not in df.columns:
            raise ParameterError(
                f"{who}: column {col!r} (argument {arg}) not in the data. Columns: {list(map(str, df.columns))}."
            )


def _numeric(df: pd.DataFrame, col: str, who: str, table: str = "summary") -> np.ndarray:
    s = df[col]
    try:
        v = pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise SchemaError(f"{who}: column {col!r} holds {s.dtype} values, not numbers.") from err
    bad = ~np.isfinite(v)
    if bad.any():
        _fail(df, col, bad, "missing or infinite", "fill or drop these rows", who, table)
    return v


def _fail(df, col, bad, check, advice, who, table="summary"):
    rows = np.flatnonzero(bad)
    idx = df.index[rows]
    vals = df[col].iloc[rows] if col in df.columns else pd.Series([np.nan] * len(rows))
    cases = pd.DataFrame({
        "table": table, "column": col, "check": check, "row": list(idx), "value": list(vals), "advice": advice,
    })
    first = ", ".join(f"{i!r}: {v!r}" for i, v in zip(idx[:5], list(vals[:5]), strict=False))
    raise SchemaError(
        f"{who}: {len(rows)} row(s) of column {col!r} are {check} (first: {first}); {advice}.", cases
    )


def _weights(df, weights, who) -> np.ndarray:
    if weights is None:
        return np.ones(len(df))
    w = _numeric(df, weights, who)
    if (w < 0).any():
        _fail(df, weights, w < 0, "negative", "weights count customers, so they must be >= 0", who)
    return w


def _group(cols: list[np.ndarray], w: np.ndarray):
    """Unique rows of the stacked columns, their summed weights, and each row's group number."""
    frame = pd.DataFrame({i: c for i, c in enumerate(cols)})
    g = frame.groupby(list(frame.columns), sort=False, dropna=False)
    inverse = g.ngroup().to_numpy()
    n = inverse.max() + 1 if len(inverse) else 0
    ww = np.bincount(inverse, weights=w, minlength=n)
    first = np.zeros(n, dtype=np.int64)
    first[inverse] = np.arange(len(inverse))  # any row of a group represents it: they are identical
    uniq = [c[first] for c in cols]
    return uniq, ww, inverse


def _quantiles(draws: np.ndarray, level: float):
    """Central ``level`` interval of draws along the last axis."""
    lo, hi = (1 - level) / 2, (1 + level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(draws, lo, axis=-1), np.nanquantile(draws, hi, axis=-1)


def _html(title: str, body: str, table: pd.DataFrame) -> str:
    return (f"<div><strong>{html.escape(title)}</strong><p>{html.escape(body)}</p>"
            f"{table.to_html(float_format=lambda v: f'{v:.4g}')}</div>")


class _Estimate:
    """One maximum-likelihood fit: estimates, covariance, log-likelihood."""

    def __init__(self, names, est, cov_log, loglik, n, n_unique, iterations):
        self.names = list(names)
        self.est = np.asarray(est, dtype=float)
        self.cov_log = np.asarray(cov_log, dtype=float)  # covariance of log(parameters)
        d = np.diag(self.est)
        self.cov = d @ self.cov_log @ d  # delta method: natural scale
        self.se = np.sqrt(np.diag(self.cov))
        self.loglik, self.n, self.n_unique, self.iterations = float(loglik), float(n), int(n_unique), int(iterations)

    def table(self, level: float) -> pd.DataFrame:
        from scipy.special import ndtri

        z = ndtri((1 + level) / 2)
        se_log = np.sqrt(np.diag(self.cov_log))
        out = pd.DataFrame({
            "estimate": self.est, "se": self.se,
            "lower": self.est * np.exp(-z * se_log), "upper": self.est * np.exp(z * se_log),
        }, index=pd.Index(self.names, name="parameter"))
        return out

    def draws(self, n_draws: int, seed) -> np.ndarray:
        """(n_draws, k) parameters drawn from the asymptotic normal of log(parameters)."""
        rng = np.random.default_rng(seed)
        # Cholesky (unique for a positive-definite matrix), so a seed gives the same draws on every platform
        chol = np.linalg.cholesky(self.cov_log)
        u = np.log(self.est) + rng.standard_normal((n_draws, len(self.est))) @ chol.T
        return np.exp(u)


def _mle(value_and_grad: Callable, x0s: list, names: list[str], *, n: float, n_unique: int, who: str,
         advice: str, edge: Callable | None = None) -> _Estimate:
    """Maximise a log-likelihood over positive parameters.

    ``value_and_grad(theta)`` returns the total log-likelihood and its gradient
    in the natural parameters. The search runs on log(theta) with BFGS from
    each start in ``x0s`` (stopping at the first that converges); the Hessian
    is the numerical Jacobian of the analytic gradient. ``edge(theta)`` may
    return a model-specific explanation when the search ran off to a boundary.
    """
    from scipy.optimize import minimize

    scale = max(n, 1.0)

    def f(u):
        theta = np.exp(u)
        with np.errstate(all="ignore"):
            ll, g = value_and_grad(theta)
        if not np.isfinite(ll) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(u)
        return -ll / scale, -g * theta / scale

    best, tried = None, []
    for x0 in x0s:
        u0 = np.log(np.asarray(x0, dtype=float))
        with np.errstate(over="ignore"):
            res = minimize(f, u0, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
        tried.append(res)
        # BFGS reports "precision loss" when it cannot improve further; judge by the gradient instead, after
        # polishing with Newton steps on the analytic gradient (quadratic convergence near the optimum)
        if np.isfinite(res.fun) and np.max(np.abs(res.jac)) < 1e-3 and np.all(np.abs(res.x) < 30):
            res.x, res.fun, res.jac = _newton_polish(f, value_and_grad, res.x)
        if np.isfinite(res.fun) and np.max(np.abs(res.jac)) < 1e-8:
            best = res
            break
    cand = best or min(tried, key=lambda r: r.fun if np.isfinite(r.fun) else np.inf)
    theta = np.exp(cand.x)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, theta, strict=True))
    why = edge(theta) if edge is not None else None
    if why:
        raise ParameterError(f"{who}: {why}")
    if best is None:
        raise ParameterError(
            f"{who}: the maximum-likelihood fit did not converge ({cand.message.strip().rstrip('.')}; largest "
            f"gradient {np.max(np.abs(cand.jac)):.2g} at {shown}). " + advice
        )
    if np.any(theta > 1e6) or np.any(theta < 1e-6):
        raise ParameterError(
            f"{who}: the fit ran to the edge of the parameter space ({shown}), so the data do not identify the "
            "model. " + advice
        )
    hess = _hessian_log(value_and_grad, best.x)
    try:
        cov_log = np.linalg.inv(-hess)
        ok = np.all(np.linalg.eigvalsh(-hess) > 0) and np.all(np.diag(cov_log) > 0)
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        raise ParameterError(
            f"{who}: the log-likelihood is flat or not concave at the estimate "
            f"({shown}), so standard errors "
            "cannot be computed. " + advice
        )
    ll, _ = value_and_grad(theta)
    return _Estimate(names, theta, cov_log, ll, n, n_unique, best.nit)


def _newton_polish(f, value_and_grad, u, steps: int = 6):
    """A few Newton steps on the mean objective ``f`` (value, gradient in u); returns u, f(u), gradient."""
    fu, gu = f(u)
    for _ in range(steps):
        if np.max(np.abs(gu)) < 1e-12:
            break
        h = _hessian_log(value_and_grad, u)
        try:
            if not np.all(np.linalg.eigvalsh(-h) > 0):
                break
            step = np.linalg.solve(-h, value_and_grad(np.exp(u))[1] * np.exp(u))
        except np.linalg.LinAlgError:
            break
        new = u + step
        fn, gn = f(new)
        if not np.isfinite(fn) or fn > fu + 1e-12 * max(1.0, abs(fu)):
            break
        u, fu, gu = new, fn, gn
    return u, fu, gu


def _hessian_log(value_and_grad, u):
    """Hessian of the log-likelihood in u = log(theta): central differences of the analytic gradient in u."""
    k = len(u)
    h = np.empty((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(u[j]))
        e = np.zeros(k)
        e[j] = step
        gp = value_and_grad(np.exp(u + e))[1] * np.exp(u + e)
        gm = value_and_grad(np.exp(u - e))[1] * np.exp(u - e)
        h[:, j] = (gp - gm) / (2 * step)
    return (h + h.T) / 2


class _Model:
    """Shared machinery of the fitted models: summary, draws, intervals, display."""

    _title = ""
    _names: tuple[str, ...] = ()

    def __init__(self, *, level: float = 0.95):
        self.level = _check_level(level)

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise ParameterError(f"This {type(self).__name__} is not fitted yet; call .fit(...) first.")

    def _set(self, est: _Estimate):
        self._est = est
        self.params_ = pd.Series(est.est, index=pd.Index(est.names, name="parameter"), name="estimate")
        self.cov_ = pd.DataFrame(est.cov, index=est.names, columns=est.names)
        self.summary = est.table(self.level)
        self.loglik_ = est.loglik
        self.aic_ = 2 * len(est.names) - 2 * est.loglik
        self.n_ = est.n
        self.n_unique_ = est.n_unique

    def sample_params(self, n_draws: int = 1000, *, seed=0) -> pd.DataFrame:
        """Parameters drawn from the estimates' asymptotic normal distribution.

        The draws are of the log-parameters, from a normal with mean the log
        estimates and the covariance of the inverse Hessian (delta method), so
        every draw is positive. They are what the intervals are made of.

        Returns
        -------
        DataFrame
            One row per draw, one column per parameter.
        """
        self._check_fitted()
        return pd.DataFrame(self._est.draws(_check_draws(n_draws), seed), columns=self._est.names)

    def _with_interval(self, fn, interval, level, n_draws, seed, name):
        """fn(params (k,) or (k, m) columns) -> values; returns dict of columns."""
        point = fn(self._est.est[:, None])[..., 0]
        out = {name: point}
        if interval:
            level = self.level if level is None else _check_level(level)
            draws = self._est.draws(_check_draws(n_draws), seed)
            vals = fn(draws.T)
            lo, hi = _quantiles(vals, level)
            out["lower"], out["upper"] = lo, hi
        return out

    def model_summary(self):
        """The fit as a statsmodels ``Summary`` (``.as_text()``, ``.as_html()``)."""
        from statsmodels.iolib.summary2 import Summary

        self._check_fitted()
        s = Summary()
        s.add_title(f"{self._title}: maximum likelihood")
        info = {
            "Customers:": f"{self.n_:,.0f}",
            "Distinct rows:": f"{self.n_unique_:,}",
            "Log-likelihood:": f"{self.loglik_:.4f}",
            "AIC:": f"{self.aic_:.4f}",
            "Interval:": f"{self.level:.0%}, log scale",
        }
        s.add_dict(info)
        s.add_df(self.summary, float_format="%.4f")
        return s

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"{type(self).__name__}(level={self.level}) — not fitted"
        p = ", ".join(f"{k}={v:.4g} (se {s:.2g})" for k, v, s in zip(self.params_.index, self.params_,
                                                                    self.summary["se"], strict=True))
        return f"{type(self).__name__}({self.n_:,.0f} customers, log-likelihood {self.loglik_:.2f}; {p})"

    def _repr_html_(self) -> str:
        if not hasattr(self, "params_"):
            return f"<p>{html.escape(repr(self))}</p>"
        body = (f"{self.n_:,.0f} customers ({self.n_unique_:,} distinct rows), log-likelihood "
                f"{self.loglik_:.2f}, AIC {self.aic_:.2f}; {self.level:.0%} intervals")
        return _html(self._title, body, self.summary)


# --------------------------------------------------------------------------- simple formula


def simple(margin, retention, discount, *, timing: str = "end", retention_n=None, level: float = 0.95):
    """Customer lifetime value from a constant margin, retention rate and discount rate.

    Parameters
    ----------
    margin : float or array-like
        Margin per period of a customer.
    retention : float or array-like
        Share of customers who stay from one period to the next, in [0, 1).
    discount : float or array-like
        Discount rate per period (0.1 for 10 %), > -1.
    timing : {"end", "start"}
        When the margin arrives.

        - ``"end"`` (default): ``m r / (1 + d - r)``, the standard margin
          multiple (Gupta & Lehmann 2003). The customer is acquired now, the
          first margin arrives at the end of the first period if she is still
          a customer then (probability ``r``), and margin ``t`` arrives at the
          end of period ``t`` with probability ``r**t``, discounted by
          ``(1 + d)**t``: ``sum_{t>=1} m r^t / (1+d)^t``.
        - ``"start"``: ``m (1 + d) / (1 + d - r)``: margins arrive at the start
          of each period, the first one now and for sure:
          ``sum_{t>=0} m r^t / (1+d)^t``.
    retention_n : int or array-like, optional
        Number of customers the retention rate was measured on. With it, the
        result has an interval: the Wilson score interval of the retention
        rate (at ``level``), carried through the formula (the CLV rises with
        retention, so the interval's ends map to the CLV's).
    level : float
        Confidence level of that interval.

    Returns
    -------
    float, ndarray or DataFrame
        The CLV, in the shape of the inputs; with ``retention_n`` a DataFrame
        with ``retention``, ``clv``, ``lower``, ``upper``.

    Notes
    -----
    The formula assumes one retention rate for every customer and period. In a
    cohort whose members differ, observed retention rises with tenure (the
    less loyal leave first) and this formula undervalues the customer base
    (Fader & Hardie 2010); :class:`ShiftedBetaGeometric` accounts for that.
    Checked against a hand computation of the sums in the tests.

    Examples
    --------
    >>> from kamtools import clv
    >>> round(clv.simple(100, 0.8, 0.1), 2)          # 100 * 0.8 / (1.1 - 0.8)
    266.67
    >>> round(clv.simple(100, 0.8, 0.1, timing="start"), 2)
    366.67
    >>> clv.simple(100, 0.8, 0.1, retention_n=200).round(1)
       retention    clv  lower  upper
    0        0.8  266.7  204.8  339.2
    """
    if timing not in ("end", "start"):
        raise ParameterError(f"timing={timing!r}; use 'end' (margin at the end of each period survived) or "
                             "'start' (margin at the start of each period, the first one now).")
    m, r, d = (np.asarray(v, dtype=float) for v in (margin, retention, discount))
    if np.any((r < 0) | (r >= 1) | ~np.isfinite(r)):
        raise ParameterError(f"retention={retention!r} must be a share in [0, 1); 0.8 means 80 % stay a period.")
    if np.any((d <= -1) | ~np.isfinite(d)):
        raise ParameterError(f"discount={discount!r} must be a rate per period above -1, e.g. 0.1 for 10 %.")
    if np.any(~np.isfinite(m)):
        raise ParameterError(f"margin={margin!r} must be finite numbers.")

    def f(rr):
        return m * (rr if timing == "end" else 1 + d) / (1 + d - rr)

    if retention_n is None:
        out = f(r)
        if isinstance(retention, pd.Series):
            return pd.Series(out, index=retention.index, name="clv")
        return float(out) if out.ndim == 0 else out
    from scipy.special import ndtri

    level = _check_level(level)
    n = np.asarray(retention_n, dtype=float)
    if np.any((n < 1) | ~np.isfinite(n)):
        raise ParameterError(f"retention_n={retention_n!r} must be the number (>= 1) of customers the retention "
                             "rate was measured on.")
    z = ndtri((1 + level) / 2)
    centre = (r + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(r * (1 - r) / n + z**2 / (4 * n**2))
    lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1 - 1e-12)
    shape = np.broadcast(m, r, d, n).shape
    out = pd.DataFrame({
        "retention": np.broadcast_to(r, shape).ravel(), "clv": np.broadcast_to(f(r), shape).ravel(),
        "lower": np.broadcast_to(f(lo), shape).ravel(), "upper": np.broadcast_to(f(hi), shape).ravel(),
    })
    if isinstance(retention, pd.Series) and len(out) == len(retention):
        out.index = retention.index
    return out


# --------------------------------------------------------------------------- shifted beta geometric


def _sbg_value_and_grad(t, event, w):
    from scipy.special import betaln, digamma

    t = np.asarray(t, dtype=float)
    ev = np.asarray(event, dtype=bool)
    tt = np.where(ev, t - 1, t)  # event: B(a+1, b+t-1); censored: B(a, b+t)

    def vg(theta):
        a, b = theta
        ll = np.where(ev, betaln(a + 1, b + tt), betaln(a, b + tt)) - betaln(a, b)
        psi_ab = digamma(a + b)
        psi_abt = digamma(a + b + t)
        da = np.where(ev, digamma(a + 1), digamma(a)) - psi_abt - (digamma(a) - psi_ab)
        db = digamma(b + tt) - psi_abt - (digamma(b) - psi_ab)
        return float(w @ ll), np.array([w @ da, w @ db])

    return vg


def _sbg_survival(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """S(t) = B(a, b + t) / B(a, b); params (2, m) -> (len(t), m)."""
    from scipy.special import betaln

    a, b = params[0][None, :], params[1][None, :]
    t = np.asarray(t, dtype=float)[:, None]
    return np.exp(betaln(a, b + t) - betaln(a, b))


def _hyp2f1_1(b, c, z):
    """2F1(1, b; c; z) for 0 <= z < 1 (scipy; the tests check it against the series it sums)."""
    from scipy.special import hyp2f1

    return hyp2f1(1.0, b, c, z)


def _sbg_derl(params: np.ndarray, discount, renewals) -> np.ndarray:
    """DERL(d | a, b, n renewals) = (b+n)/(a+b+n) 2F1(1, b+n+1; a+b+n+1; 1/(1+d)) (Fader & Hardie 2010)."""
    a, b = params[0][None, :], params[1][None, :]
    n = np.asarray(renewals, dtype=float)[:, None]
    d = np.asarray(discount, dtype=float)
    d = d[:, None] if d.ndim else d
    z = 1 / (1 + d)
    return (b + n) / (a + b + n) * _hyp2f1_1(b + n + 1, a + b + n + 1, z)


def _sbg_del(params: np.ndarray, discount) -> np.ndarray:
    """DEL(d | a, b) = 2F1(1, b; a+b; 1/(1+d)): discounted expected lifetime of a new customer, in periods."""
    a, b = params[0][None, :], params[1][None, :]
    d = np.asarray(discount, dtype=float)
    d = d[:, None] if d.ndim else d
    return _hyp2f1_1(b, a + b, 1 / (1 + d))


class ShiftedBetaGeometric(_Model):
    """Shifted-beta-geometric model of contract renewals (Fader & Hardie 2007).

    Each customer renews at the end of every period with her own constant
    probability ``1 - theta``; ``theta`` varies across customers as a
    Beta(alpha, beta) distribution. So a cohort's retention rate rises with
    tenure, as the customers likely to leave leave first:
    ``r_t = (beta + t - 1) / (alpha + beta + t - 1)``.

    Parameters
    ----------
    level : float
        Confidence level of the parameter intervals in ``summary`` and of the
        prediction intervals (0.95).

    Attributes
    ----------
    params_ : Series or DataFrame
        ``alpha`` and ``beta``; with ``by=`` a DataFrame with one row per group.
    summary : DataFrame
        Index ``parameter`` (with ``by=``: group, parameter); ``estimate``,
        ``se`` (from the Hessian of the log-likelihood), ``lower``, ``upper``
        (interval on the log scale, so it stays positive).
    cov_ : DataFrame
        Covariance of the estimates (only without ``by=``).
    loglik_, aic_ : float
        Log-likelihood and AIC (summed over groups).
    n_ : float
        Customers (sum of the weights).
    groups_ : list
        The groups (``[None]`` without ``by=``).

    Notes
    -----
    Time runs in periods between renewal opportunities. A customer acquired at
    the start of period 1 who does not renew at the end of period ``t`` has
    duration ``t`` and an event; one still a customer after ``t`` renewals is
    censored at ``t`` (she is known to have survived ``t`` renewal decisions).
    The log-likelihood is ``sum log P(T = t)`` over losses plus ``sum log
    S(t)`` over censored customers, with ``P(T = t) = B(alpha + 1, beta + t -
    1) / B(alpha, beta)`` and ``S(t) = B(alpha, beta + t) / B(alpha, beta)``.

    Checked against Fader & Hardie (2007): the "regular" and "high end"
    cohorts give alpha = 0.704, beta = 1.182 and alpha = 0.668, beta = 3.806,
    as printed there; and against simulated cohorts with known parameters.

    Examples
    --------
    Fader & Hardie's (2007) "high end" customers, 1000 acquired, still active
    after each of the first seven years:

    >>> from kamtools import clv
    >>> sbg = clv.ShiftedBetaGeometric().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    >>> sbg.params_.round(3).tolist()
    [0.668, 3.806]
    >>> sbg.survival(periods=10).iloc[-1].round(3).to_dict()
    {'period': 10.0, 'survival': 0.414, 'retention': 0.95, 'observed': nan}
    >>> round(sbg.derl(0.10, renewals=7)["derl"].item(), 2)
    7.53
    """

    _title = "Shifted-beta-geometric model"
    _names = ("alpha", "beta")

    def fit(self, data, *, duration: str | None = None, event: str | None = None, weights: str | None = None,
            by: str | None = None) -> ShiftedBetaGeometric:
        """Fit on cohort counts or on per-customer durations; returns ``self``.

        Parameters
        ----------
        data : sequence, Series or DataFrame
            Either

            - cohort counts: customers still active at the start (period 0,
              the cohort's size) and after each period, e.g. ``[1000, 631,
              468, 382]``; a DataFrame of counts holds one cohort per column
              (rows are periods 0, 1, ...; trailing missing values for young
              cohorts) and gives one fit per cohort; or
            - with ``duration`` and ``event``: one row per customer (or per
              group of identical customers, with ``weights``).
        duration : str, optional
            Column of whole periods: for a lost customer the period after
            which she did not renew (>= 1); for an active one the number of
            renewals she has made (>= 0).
        event : str, optional
            Column, True when the customer was lost.
        weights : str, optional
            Column of counts of identical customers.
        by : str, optional
            Column of groups (cohorts, segments) that each get their own fit.
        """
        if duration is None and event is None:
            if weights is not None or by is not None:
                raise ParameterError("weights= and by= go with per-customer data (duration= and event=); for "
                                     "counts, pass one column per cohort.")
            groups = self._from_counts(data)
            self.by = None if len(groups) == 1 and None in groups else "cohort"
        else:
            if duration is None or event is None:
                raise ParameterError("Pass both duration= and event= (column names), or cohort counts alone.")
            groups = self._from_durations(data, duration, event, weights, by)
            self.by = by
        self._fits, self._observed = {}, {}
        for g, (t, ev, w) in groups.items():
            who = "ShiftedBetaGeometric.fit" + ("" if g is None else f" ({self.by}={g!r})")
            self._fits[g] = self._fit_one(t, ev, w, who)
            self._observed[g] = _discrete_km(t, ev, w)
        self.groups_ = list(self._fits)
        if len(self._fits) == 1 and self.groups_ == [None]:
            self._set(self._fits[None])
        else:
            tables = {g: f.table(self.level) for g, f in self._fits.items()}
            self.summary = pd.concat(tables, names=[self.by or "group", "parameter"])
            self.params_ = self.summary["estimate"].unstack("parameter")[list(self._names)]
            self.params_.columns.name = None
            self.loglik_ = sum(f.loglik for f in self._fits.values())
            self.aic_ = 2 * 2 * len(self._fits) - 2 * self.loglik_
            self.n_ = sum(f.n for f in self._fits.values())
            self.n_unique_ = sum(f.n_unique for f in self._fits.values())
            self._est = None
        return self

    @staticmethod
    def _counts(c, name) -> tuple:
        c = np.asarray(pd.Series(c).dropna(), dtype=float)
        label = "counts" if name is None else f"counts of cohort {name!r}"
        if len(c) < 2:
            raise ParameterError(f"{label}: need the cohort size and at least one later count, e.g. [1000, 631, 468].")
        if c[0] <= 1 and np.all((c >= 0) & (c <= 1)):
            raise ParameterError(f"{label}: {c.tolist()} look like shares; pass counts of customers (the standard "
                                 "errors depend on the cohort size), e.g. [1000, 631, 468].")
        if np.any(c < 0) or np.any(c != np.round(c)):
            raise ParameterError(f"{label}: {c.tolist()} must be whole numbers of customers >= 0.")
        if np.any(np.diff(c) > 0):
            k = int(np.flatnonzero(np.diff(c) > 0)[0]) + 1
            raise ParameterError(f"{label}: customers still active cannot increase, but period {k} has {c[k]:g} "
                                 f"after {c[k - 1]:g}. Counts are of one cohort, acquired at period 0.")
        k = len(c) - 1
        t = np.r_[np.arange(1, k + 1), k].astype(float)
        ev = np.r_[np.ones(k, dtype=bool), False]
        w = np.r_[c[:-1] - c[1:], c[-1]]
        return t, ev, w

    def _from_counts(self, data):
        if isinstance(data, pd.DataFrame):
            return {col: self._counts(data[col], col) for col in data.columns}
        return {None: self._counts(data, None)}

    def _from_durations(self, df, duration, event, weights, by):
        who = "ShiftedBetaGeometric.fit"
        _columns(df, {"duration": duration, "event": event, "weights": weights, "by": by}, who)
        t = _numeric(df, duration, who)
        ev_raw = df[event]
        if ev_raw.isna().any():
            _fail(df, event, ev_raw.isna().to_numpy(), "missing", "mark each customer lost (True) or not (False)", who)
        if not (pd.api.types.is_bool_dtype(ev_raw) or pd.api.types.is_numeric_dtype(ev_raw)):
            raise SchemaError(f"{who}: column {event!r} holds {ev_raw.dtype} values; it must be True/False (or 1/0) "
                              "for lost/not lost.")
        ev = ev_raw.astype(bool).to_numpy()
        if np.any(t != np.round(t)) or np.any(t < 0):
            _fail(df, duration, (t != np.round(t)) | (t < 0), "not whole numbers of periods >= 0",
                  "count renewal periods (see contract_renewals())", who)
        if np.any(ev & (t < 1)):
            _fail(df, duration, ev & (t < 1), "0 for lost customers",
                  "a customer lost at the first renewal has duration 1", who)
        w = _weights(df, weights, who)
        if by is None:
            return {None: (t, ev, w)}
        key = df[by]
        if key.isna().any():
            _fail(df, by, key.isna().to_numpy(), "missing", "give every row a group", who)
        out = {}
        for g, idx in sorted(pd.Series(np.arange(len(df))).groupby(key.to_numpy()).groups.items(),
                             key=lambda kv: str(kv[0])):
            ii = np.asarray(idx)
            out[g] = (t[ii], ev[ii], w[ii])
        return out

    def _fit_one(self, t, ev, w, who) -> _Estimate:
        (tu, eu), wu, _ = _group([t, ev], w)
        keep = wu > 0
        tu, eu, wu = tu[keep], eu[keep].astype(bool), wu[keep]
        n = wu.sum()
        if not (eu * wu).sum():
            raise ParameterError(f"{who}: no customer was lost, so churn cannot be estimated. Try 1) a longer "
                                 "observation window; 2) pooling groups (fewer by= groups).")
        vg = _sbg_value_and_grad(tu, eu, wu)
        churn1 = max(min((eu & (tu == 1)) @ wu / max(wu @ (tu >= 1), 1), 0.9), 0.05)
        starts = [(churn1, 1 - churn1), (1.0, 1.0), (0.5, 2.0), (2.0, 10.0)]
        decisions = float(wu @ tu)  # renewal decisions observed: t per customer (t - 1 renewals + the loss)
        losses = float(wu @ eu)

        def edge(theta):
            a, b = theta
            if a + b < 1e4:
                return None
            r = 1 - losses / decisions
            return ("alpha and beta grow without bound: the data show no sign that customers differ in their "
                    "churn probability (retention does not rise with tenure), so the sBG reduces to one constant "
                    "retention rate. Try 1) the constant-rate formula, "
                    f"clv.simple(margin, retention={r:.4f}, discount=..., retention_n={decisions:.0f}) "
                    f"({losses:.0f} losses in {decisions:.0f} renewal decisions); 2) pooling groups, or fitting "
                    "groups that differ (by=); 3) more periods of data.")

        return _mle(vg, starts, list(self._names), n=n, n_unique=len(tu), who=who, edge=edge,
                    advice="Try 1) more periods of data; 2) checking that durations count renewal periods and "
                           "that events mark lost customers; 3) fewer by= groups, so each has enough losses.")

    def sample_params(self, n_draws: int = 1000, *, seed=0) -> pd.DataFrame:
        """Parameters drawn from the estimates' asymptotic normal distribution (log scale).

        Returns
        -------
        DataFrame
            One row per draw (and group, with a first column naming it):
            ``alpha``, ``beta``.
        """
        self._check_fitted()
        n_draws = _check_draws(n_draws)
        frames = []
        for g, est in self._fits.items():
            f = pd.DataFrame(est.draws(n_draws, seed), columns=list(self._names))
            if self.by is not None:
                f.insert(0, self.by, g)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    # ----- predictions

    def _groups_loop(self, fn, interval, level, n_draws, seed):
        """Run fn(params (2, m)) -> array (rows, m) for each group; return list of (group, dict of arrays)."""
        level = self.level if level is None else _check_level(level)
        out = []
        for g, est in self._fits.items():
            cols = {"value": fn(est.est[:, None])[:, 0]}
            if interval:
                draws = est.draws(_check_draws(n_draws), seed)
                cols["lower"], cols["upper"] = _quantiles(fn(draws.T), level)
            out.append((g, cols))
        return out

    def _frame(self, parts, extra: dict, name: str) -> pd.DataFrame:
        frames = []
        for g, cols in parts:
            f = pd.DataFrame({**extra, name: cols["value"]})
            if "lower" in cols:
                f[f"{name}_lower"], f[f"{name}_upper"] = cols["lower"], cols["upper"]
            if self.by is not None:
                f.insert(0, self.by, g)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def survival(self, periods: int = 12, *, interval: bool = False, level: float | None = None,
                 n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Survival and retention projected over ``periods`` periods.

        Returns
        -------
        DataFrame
            One row per (group and) period 0..periods: ``period``,
            ``survival`` (share of the cohort still active after the period),
            ``retention`` (share of those active after period t-1 who renew
            after period t: ``(beta + t - 1) / (alpha + beta + t - 1)``;
            missing at 0), ``observed`` (the data's survival, a discrete
            Kaplan-Meier estimate; missing beyond the data). With
            ``interval=True`` also ``survival_lower``, ``survival_upper``,
            ``retention_lower``, ``retention_upper`` (parameter draws, see the
            module notes).
        """
        self._check_fitted()
        if not isinstance(periods, (int, np.integer)) or periods < 1:
            raise ParameterError(f"periods={periods!r} must be a whole number >= 1.")
        t = np.arange(periods + 1)

        def ret(p):
            a, b = p[0][None, :], p[1][None, :]
            tt = t[:, None].astype(float)
            return (b + tt - 1) / (a + b + tt - 1)

        s = self._frame(self._groups_loop(lambda p: _sbg_survival(p, t), interval, level, n_draws, seed),
                        {"period": t}, "survival")
        r = self._frame(self._groups_loop(ret, interval, level, n_draws, seed), {"period": t}, "retention")
        for c in [c for c in r.columns if c.startswith("retention")]:
            s[c] = r[c].where(r["period"] > 0)
        s["observed"] = np.concatenate([self._observed[g].reindex(t).to_numpy() for g in self.groups_])
        return s

    def derl(self, discount: float, *, renewals=0, interval: bool = False, level: float | None = None,
             n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Discounted expected residual lifetime (Fader & Hardie 2010), in periods.

        For a customer who has made ``renewals`` renewals and stands just
        before her next renewal decision: the expected number of further
        periods she pays for, each discounted by ``(1 + discount)`` per period
        from now, the first (the coming renewal) undiscounted:
        ``(beta + n) / (alpha + beta + n) * 2F1(1, beta + n + 1; alpha + beta
        + n + 1; 1 / (1 + d))``. Times a margin per period, it is the
        customer's residual value.

        Parameters
        ----------
        discount : float
            Discount rate per period.
        renewals : int or sequence of int
            Renewals already made (0: a customer in her first period).

        Returns
        -------
        DataFrame
            (group,) ``renewals``, ``derl`` (with ``interval=True``:
            ``derl_lower``, ``derl_upper``).

        Notes
        -----
        Checked against the series it sums, computed term by term in the
        tests, and against the 7.530 of the shifted_beta_geometric_py package
        for the "high end" cohort at 10 % and 7 renewals.
        """
        self._check_fitted()
        d = _check_discount(discount)
        n = np.atleast_1d(np.asarray(renewals, dtype=float))
        if np.any(n < 0) or np.any(n != np.round(n)):
            raise ParameterError(f"renewals={renewals!r} must be whole numbers >= 0.")
        parts = self._groups_loop(lambda p: _sbg_derl(p, d, n), interval, level, n_draws, seed)
        return self._frame(parts, {"renewals": n.astype(int)}, "derl")

    def clv(self, margin: float, discount: float, *, interval: bool = False, level: float | None = None,
            n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Expected lifetime value of a newly acquired customer.

        ``margin * DEL`` with ``DEL = 2F1(1, beta; alpha + beta; 1 / (1 +
        d))`` (Fader & Hardie 2010): the margin of the first period is paid
        now, that of period ``t`` at the start of period ``t`` if she is still
        a customer, discounted by ``(1 + d)**(t - 1)``.

        Returns
        -------
        DataFrame
            (group,) ``del`` (discounted expected lifetime, periods), ``clv``;
            with ``interval=True`` also ``clv_lower``, ``clv_upper``.
        """
        self._check_fitted()
        d = _check_discount(discount)
        m = float(margin)
        dl = self._frame(self._groups_loop(lambda p: _sbg_del(p, d).reshape(1, -1), False, level, n_draws, seed),
                         {}, "del")
        out = self._frame(self._groups_loop(lambda p: m * _sbg_del(p, d).reshape(1, -1), interval, level, n_draws,
                                            seed), {}, "clv")
        out.insert(len(out.columns) - (3 if interval else 1), "del", dl["del"].to_numpy())
        return out

    def residual_value(self, df: pd.DataFrame, *, margin, discount: float, renewals: str = "renewals",
                       interval: bool = False, level: float | None = None, n_draws: int = 1000,
                       seed=0) -> pd.DataFrame:
        """Expected residual value of each active customer: margin x DERL.

        Parameters
        ----------
        df : DataFrame
            One row per active customer, with the ``renewals`` column (and the
            ``by`` column of the fit, if any).
        margin : str, float or array-like
            Column of margin per period, one margin for all, or one per row
            (a Series is aligned on ``df``'s index).
        discount : float
            Discount rate per period.
        renewals : str
            Column of renewals made so far.

        Returns
        -------
        DataFrame
            Indexed like ``df``: ``renewals``, ``derl``, ``margin``,
            ``residual_value`` (with ``interval=True`` also ``lower`` and
            ``upper`` of the residual value).
        """
        self._check_fitted()
        who = "ShiftedBetaGeometric.residual_value"
        d = _check_discount(discount)
        _columns(df, {"renewals": renewals, "by": self.by}, who)
        n = _numeric(df, renewals, who)
        if isinstance(margin, str):
            _columns(df, {"margin": margin}, who)
            m = _numeric(df, margin, who)
        else:
            m = np.asarray(margin.reindex(df.index) if isinstance(margin, pd.Series) else margin, dtype=float)
            m = np.broadcast_to(m, (len(df),)).copy() if m.ndim == 0 or m.shape == (len(df),) else None
            if m is None or not np.all(np.isfinite(m)):
                raise ParameterError(f"{who}: margin must be a column name, one number, or one finite number per "
                                     f"row of df ({len(df)}).")
        level = self.level if level is None else _check_level(level)
        keys = [None] * len(df) if self.by is None else df[self.by].to_numpy()
        res = pd.DataFrame({"renewals": n, "derl": np.nan, "margin": m, "residual_value": np.nan}, index=df.index)
        if interval:
            res["lower"], res["upper"] = np.nan, np.nan
        unknown = set(pd.unique(pd.Series(keys, dtype=object))) - set(self._fits)
        if unknown:
            raise ParameterError(f"{who}: groups {sorted(map(str, unknown))} of {self.by!r} were not in the fit; "
                                 f"fitted groups: {list(map(str, self._fits))}.")
        for g, est in self._fits.items():
            rows = np.flatnonzero(pd.Series(keys, dtype=object).eq(g).to_numpy()) if self.by else np.arange(len(df))
            if not len(rows):
                continue
            (nu,), _, inv = _group([n[rows]], np.ones(len(rows)))
            der = _sbg_derl(est.est[:, None], d, nu)[:, 0]
            res.iloc[rows, 1] = der[inv]
            res.iloc[rows, 3] = der[inv] * m[rows]
            if interval:
                draws = est.draws(_check_draws(n_draws), seed)
                dd = _sbg_derl(draws.T, d, nu)[inv] * m[rows][:, None]
                lo, hi = _quantiles(dd, level)
                res.iloc[rows, 4], res.iloc[rows, 5] = lo, hi
        return res

    def plot(self, periods: int = 12, *, ax=None, xlabel: str = "period"):
        """Observed and projected survival per group, with the projection's interval.

        ``xlabel`` names the period (e.g. "contract term", "year").

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        self._check_fitted()
        s = self.survival(periods, interval=True)
        if ax is None:
            fig = Figure(figsize=(7, 4), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        groups = [(None, s)] if self.by is None else list(s.groupby(self.by, sort=False))
        for i, (g, part) in enumerate(groups):
            c = f"C{i}"
            label = "sBG" if g is None else f"{g}"
            ax.plot(part["period"], part["survival"], color=c, label=f"{label} (model)")
            ax.fill_between(part["period"], part["survival_lower"], part["survival_upper"], color=c, alpha=0.15)
            ax.plot(part["period"], part["observed"], "o", color=c, markersize=4, label=f"{label} (observed)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share still active")
        ax.set_ylim(0, 1.02)
        ax.set_title("Shifted-beta-geometric: survival projected forward")
        ax.legend(frameon=False, fontsize="small")
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    def model_summary(self):
        """The fit as a statsmodels ``Summary`` (one block of parameters per group)."""
        from statsmodels.iolib.summary2 import Summary

        self._check_fitted()
        s = Summary()
        s.add_title(f"{self._title}: maximum likelihood")
        s.add_dict({"Customers:": f"{self.n_:,.0f}", "Groups:": f"{len(self.groups_)}",
                    "Log-likelihood:": f"{self.loglik_:.4f}", "AIC:": f"{self.aic_:.4f}"})
        s.add_df(self.summary, float_format="%.4f")
        return s

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"ShiftedBetaGeometric(level={self.level}) — not fitted"
        if self.by is None:
            return super().__repr__()
        p = "; ".join(f"{g}: alpha={r.alpha:.4g}, beta={r.beta:.4g}" for g, r in self.params_.iterrows())
        return f"ShiftedBetaGeometric({self.n_:,.0f} customers in {len(self.groups_)} groups; {p})"

    def _repr_html_(self) -> str:
        if not hasattr(self, "params_"):
            return f"<p>{html.escape(repr(self))}</p>"
        body = (f"{self.n_:,.0f} customers, {len(self.groups_)} group(s), log-likelihood {self.loglik_:.2f}; "
                f"{self.level:.0%} intervals")
        return _html(self._title, body, self.summary)


def _check_discount(discount) -> float:
    try:
        d = float(discount)
    except (TypeError, ValueError):
        d = float("nan")
    if not (d > 0 and math.isfinite(d)):
        raise ParameterError(f"discount={discount!r} must be a rate per period above 0, e.g. 0.1 for 10 %.")
    return d


def _discrete_km(t, ev, w) -> pd.Series:
    """Discrete-time Kaplan-Meier survival after each whole period, from (duration, event, weight)."""
    t = np.asarray(t, dtype=float)
    ev = np.asarray(ev, dtype=bool)
    w = np.asarray(w, dtype=float)
    k = int(t.max()) if len(t) else 0
    s, out = 1.0, {0: 1.0}
    for p in range(1, k + 1):
        at_risk = w[t >= p].sum()
        lost = w[(t == p) & ev].sum()
        if at_risk <= 0:
            break
        s *= 1 - lost / at_risk
        out[p] = s
    return pd.Series(out, dtype=float)


# --------------------------------------------------------------------------- BG/NBD


def _bgnbd_value_and_grad(x, tx, T, w):
    """Log-likelihood of Fader, Hardie & Lee (2005, eq. 6) and its gradient, summed with weights ``w``.

    The special functions depend on the frequency only, so they are evaluated
    once per distinct frequency and gathered; per row only logs and exps remain.
    """
    from scipy.special import betaln, digamma, expit, gammaln

    x, tx, T, w = (np.asarray(v, dtype=float) for v in (x, tx, T, w))
    ux, xi = np.unique(x, return_inverse=True)
    pos = ux > 0
    bx1 = np.where(pos, ux - 1, 0.0)

    def vg(theta):
        r, al, a, b = theta
        lab = betaln(a, b)
        g_rx = (gammaln(r + ux) - gammaln(r))[xi]
        b2 = (betaln(a, b + ux) - lab)[xi]
        b3 = np.where(pos, betaln(a + 1, b + bx1) - lab, -np.inf)[xi]
        d_rx = (digamma(r + ux) - digamma(r))[xi]
        psi_abx = digamma(a + b + ux)[xi]
        psi_bx = digamma(b + ux)[xi]
        inv_bx1 = np.where(pos, 1 / (b + bx1), 0.0)[xi]
        lT, ltx = np.log(al + T), np.log(al + tx)
        rx = r + x
        a2 = b2 - rx * lT
        d = b3 - rx * ltx - a2  # log of (second term / first term); -inf without repeat purchases
        w3 = expit(d)
        w2 = 1 - w3
        ll = g_rx + r * np.log(al) + a2 + np.logaddexp(0, d)
        psi_ab = digamma(a + b)
        dr = d_rx + np.log(al) - w2 * lT - w3 * ltx
        dal = r / al - rx * (w2 / (al + T) + w3 / (al + tx))
        da = psi_ab - psi_abx + w3 / a
        db = psi_bx - psi_abx - w3 * inv_bx1 - digamma(b) + psi_ab
        return float(w @ ll), np.array([w @ dr, w @ dal, w @ da, w @ db])

    return vg


def _bgnbd_expected(params, t):
    """E[X(t)] for a new customer; params (4, m), t (k,) -> (k, m).

    ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``
    (Fader, Hardie & Lee 2005, eq. 9), with the hypergeometric term rewritten
    by Euler's transformation as ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b-1; z)``
    so that it stays accurate for large parameters.
    """
    from scipy.special import hyp2f1

    r, al, a, b = (p[None, :] for p in params)
    t = np.asarray(t, dtype=float)[:, None]
    z = t / (al + t)
    term = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
    return (a + b - 1) / (a - 1) * (1 - term)


def _bgnbd_conditional(params, t, x, tx, T):
    """E[Y(t) | x, t_x, T]; params (4, m), customers (n,) -> (n, m). Fader, Hardie & Lee (2005), eq. 10."""
    from scipy.special import hyp2f1

    r, al, a, b = (p[None, :] for p in params)
    t = np.asarray(t, dtype=float)
    t = t[:, None] if t.ndim else t
    x, tx, T = (np.asarray(v, dtype=float)[:, None] for v in (x, tx, T))
    z = t / (al + T + t)
    # ((al+T)/(al+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) == (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)  (Euler)
    h = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    num = (a + b + x - 1) / (a - 1) * (1 - h)
    return num / (1 + _odds_dead(r, al, a, b, x, tx, T))


def _odds_dead(r, al, a, b, x, tx, T):
    """delta(x>0) a/(b+x-1) ((al+T)/(al+t_x))^(r+x), computed on the log scale."""
    pos = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)) + (r + x) * (np.log(al + T) - np.log(al + tx))
    return np.where(pos, np.exp(np.minimum(lo, 700)), 0.0)


def _summary_arrays(df, columns: dict, who: str):
    """Validate and return frequency, recency, T arrays of a summary DataFrame."""
    _columns(df, columns, who)
    x = _numeric(df, columns["frequency"], who)
    tx = _numeric(df, columns["recency"], who)
    T = _numeric(df, columns["T"], who)
    f, rc, tc = columns["frequency"], columns["recency"], columns["T"]
    if np.any(x < 0) | np.any(x != np.round(x)):
        _fail(df, f, (x < 0) | (x != np.round(x)), "not whole numbers >= 0",
              "frequency counts repeat purchases (periods with a purchase after the first)", who)
    if np.any(tx < 0):
        _fail(df, rc, tx < 0, "negative", "recency is the time from the first to the last purchase", who)
    if np.any(tx > T + 1e-9):
        _fail(df, rc, tx > T + 1e-9, "larger than T",
              "recency (first to last purchase) cannot exceed T (first purchase to the end of observation)", who)
    if np.any((x == 0) & (tx != 0)):
        _fail(df, rc, (x == 0) & (tx != 0), "not 0 for customers without repeat purchases",
              "a customer with frequency 0 has recency 0", who)
    if np.any((x > 0) & (tx <= 0)):
        _fail(df, rc, (x > 0) & (tx <= 0), "0 for customers with repeat purchases",
              "repeat purchases happen after the first purchase, so recency > 0", who)
    if np.any(T < 0):
        _fail(df, tc, T < 0, "negative", "T is the time from the first purchase to the end of observation", who)
    return x, tx, T


class BetaGeoModel(_Model):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

    While active, a customer buys at the times of a Poisson process with rate
    ``lambda``; after each purchase she drops out for good with probability
    ``p``. Across customers ``lambda ~ Gamma(r, alpha)`` (shape, rate) and
    ``p ~ Beta(a, b)``.

    Parameters
    ----------
    level : float
        Confidence level of intervals (0.95).

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha`` (in the summary's time unit), ``a``, ``b``.
    summary : DataFrame
        Index ``parameter``; ``estimate``, ``se`` (Hessian of the
        log-likelihood), ``lower``, ``upper`` (log-scale interval).
    cov_ : DataFrame
    loglik_, aic_ : float
    n_ : float
        Customers (sum of weights); ``n_unique_`` distinct rows fitted.

    Notes
    -----
    Input is one row per customer (or per group of identical customers, with
    ``weights``): ``frequency`` (repeat purchases), ``recency`` (time of the
    last purchase since the first) and ``T`` (time since the first purchase),
    in one time unit, as :func:`summarise_transactions` makes them. Identical
    rows are grouped before fitting. Time is rescaled internally (so that the
    largest T is 10) for a well-conditioned search; ``alpha`` is reported in
    the data's unit.

    Checked against Fader, Hardie & Lee (2005): on their CDNOW sample (2,357
    customers, 39 weeks) the estimates are r = 0.243, alpha = 4.414,
    a = 0.793, b = 2.426 and the log-likelihood -9582.4, as printed; the
    expected and conditional expected purchases match the values of Fader &
    Hardie's spreadsheet implementation (e.g. 1.226 purchases in 39 weeks for
    a customer with x = 2, t_x = 30.43, T = 38.86).

    Examples
    --------
    >>> from kamtools import clv
    >>> data = clv.simulate_bgnbd(2000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=52, seed=0)
    >>> bg = clv.BetaGeoModel().fit(data)
    >>> bg.summary.columns.tolist()
    ['estimate', 'se', 'lower', 'upper']
    >>> bg.params_.round(2).tolist()
    [0.49, 5.13, 0.9, 3.18]
    >>> bg.predict_purchases(data.head(2), t=52, interval=True).round(2).columns.tolist()
    ['expected_purchases', 'lower', 'upper']
    """

    _title = "BG/NBD model"
    _names = ("r", "alpha", "a", "b")

    def fit(self, df: pd.DataFrame, *, frequency: str = "frequency", recency: str = "recency", T: str = "T",
            weights: str | None = None) -> BetaGeoModel:
        """Fit by maximum likelihood; returns ``self``.

        Parameters
        ----------
        df : DataFrame
            One row per customer, or per group of identical customers with
            ``weights``.
        frequency, recency, T : str
            Columns (see the class notes).
        weights : str, optional
            Column of counts of identical customers.

        Raises
        ------
        SchemaError
            For impossible summaries (recency > T, fractional frequency, ...).
        ParameterError
            When the fit does not converge, with advice.
        """
        who = "BetaGeoModel.fit"
        self.columns_ = {"frequency": frequency, "recency": recency, "T": T}
        x, tx, T_ = _summary_arrays(df, self.columns_, who)
        w = _weights(df, weights, who)
        if not len(x) or w.sum() <= 0:
            raise ParameterError(f"{who}: no customers to fit.")
        if not (w * x).sum():
            raise ParameterError(f"{who}: no customer made a repeat purchase, so purchase rates cannot be "
                                 "estimated. Check the frequency column, or use a longer calibration period.")
        scale = 10.0 / T_.max()
        (xu, tu, Tu), wu, _ = _group([x, tx * scale, T_ * scale], w)
        keep = wu > 0
        xu, tu, Tu, wu = xu[keep], tu[keep], Tu[keep], wu[keep]
        vg = _bgnbd_value_and_grad(xu, tu, Tu, wu)
        rate = (wu @ xu) / (wu @ Tu)
        starts = [(1.0, 1.0 / rate, 1.0, 3.0), (0.5, 0.5 / rate, 0.5, 1.0), (2.0, 2.0 / rate, 2.0, 8.0),
                  (0.1, 0.1 / rate, 0.1, 0.1)]
        every = float(w[(x > 0) & (np.abs(x - T_) < 1e-9)].sum() / w.sum())

        def edge(theta):
            r, _, a, b = theta
            found = []
            if r > 1e4:
                found.append("r and alpha grow without bound: purchase rates do not seem to vary across customers")
            if a + b > 1e5 or a < 1e-6:
                found.append("a and b run to a boundary: dropout probabilities do not seem to vary across "
                             "customers")
            if not found:
                return None
            hint = (f" {every:.0%} of customers bought in every period, so the time unit is too coarse for a "
                    "purchase-count model." if every > 0.2 else "")
            return ("; ".join(found) + "." + hint + " Try 1) a finer time unit (freq='W' or 'D' in "
                    "summarise_transactions); 2) more customers, or a longer calibration period; 3) a simpler "
                    "model for this population (e.g. clv.simple with its retention rate).")

        est = _mle(vg, starts, list(self._names), n=wu.sum(), n_unique=len(xu), who=who, edge=edge,
                   advice="Try 1) a longer calibration period or more customers; 2) checking that frequency "
                          "counts repeat purchases and that recency and T use the same time unit; 3) a coarser "
                          "time unit (freq='W' instead of 'D') in summarise_transactions.")
        est.est[1] /= scale  # alpha back to the data's time unit; log-scale covariance is unchanged
        d = np.diag(est.est)
        est.cov = d @ est.cov_log @ d
        est.se = np.sqrt(np.diag(est.cov))
        est.loglik = _bgnbd_value_and_grad(xu, tu / scale, Tu / scale, wu)(est.est)[0]
        self._set(est)
        return self

    def _arrays(self, df, who):
        self._check_fitted()
        return _summary_arrays(df, self.columns_, who)

    def expected_purchases(self, t, *, interval: bool = False, level: float | None = None, n_draws: int = 1000,
                           seed=0) -> pd.DataFrame:
        """Expected repeat purchases of a new customer in (0, t]: E[X(t)].

        Returns
        -------
        DataFrame
            ``t``, ``expected_purchases`` (``lower``, ``upper`` with
            ``interval=True``).
        """
        self._check_fitted()
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if np.any(t < 0):
            raise ParameterError(f"t={t.tolist()} must be times >= 0.")
        out = self._with_interval(lambda p: _bgnbd_expected(p, t), interval, level, n_draws, seed,
                                  "expected_purchases")
        return pd.DataFrame({"t": t, **out})

    def predict_purchases(self, df: pd.DataFrame, *, t: float, interval: bool = False, level: float | None = None,
                          n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Expected purchases of each customer in the next ``t`` time units: E[Y(t) | x, t_x, T].

        Returns
        -------
        DataFrame
            Indexed like ``df``: ``expected_purchases`` (``lower``, ``upper``).
        """
        x, tx, T = self._arrays(df, "BetaGeoModel.predict_purchases")
        tt = float(t)
        if tt < 0:
            raise ParameterError(f"t={t!r} must be >= 0.")
        (xu, tu, Tu), _, inv = _group([x, tx, T], np.ones(len(x)))
        out = self._with_interval(lambda p: _bgnbd_conditional(p, tt, xu, tu, Tu), interval, level, n_draws, seed,
                                  "expected_purchases")
        return pd.DataFrame({k: v[inv] for k, v in out.items()}, index=df.index)

    def probability_alive(self, df: pd.DataFrame, *, interval: bool = False, level: float | None = None,
                          n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Probability that each customer is still active at T.

        ``1 / (1 + delta(x > 0) a / (b + x - 1) ((alpha + T) / (alpha +
        t_x))^(r + x))`` (Fader, Hardie & Lee 2005, eq. 13). A customer
        without repeat purchases is alive for sure under the BG/NBD.

        Returns
        -------
        DataFrame
            Indexed like ``df``: ``probability_alive`` (``lower``, ``upper``).
        """
        x, tx, T = self._arrays(df, "BetaGeoModel.probability_alive")
        (xu, tu, Tu), _, inv = _group([x, tx, T], np.ones(len(x)))

        def f(p):
            r, al, a, b = (q[None, :] for q in p)
            return 1 / (1 + _odds_dead(r, al, a, b, xu[:, None], tu[:, None], Tu[:, None]))

        out = self._with_interval(f, interval, level, n_draws, seed, "probability_alive")
        return pd.DataFrame({k: v[inv] for k, v in out.items()}, index=df.index)


# --------------------------------------------------------------------------- Gamma-Gamma


def _gg_value_and_grad(x, m, w):
    """Log-likelihood of the Gamma-Gamma model (Fader & Hardie 2013, eq. 3) and its gradient, with weights."""
    from scipy.special import digamma, gammaln

    x, m, w = (np.asarray(v, dtype=float) for v in (x, m, w))
    ux, xi = np.unique(x, return_inverse=True)
    lx, lm = np.log(x), np.log(m)

    def vg(theta):
        p, q, g = theta
        pu = p * ux
        lg_u = (gammaln(pu + q) - gammaln(pu) - gammaln(q))[xi]
        dpq_u, dp_u = digamma(pu + q), digamma(pu)
        px = p * x
        lgm = np.log(g + m * x)
        ll = lg_u + q * np.log(g) + (px - 1) * lm + px * lx - (px + q) * lgm
        dp = x * ((dpq_u - dp_u)[xi] + lm + lx - lgm)
        dq = (dpq_u - digamma(q))[xi] + np.log(g) - lgm
        dg = q / g - (px + q) / (g + m * x)
        return float(w @ ll), np.array([w @ dp, w @ dq, w @ dg])

    return vg


class GammaGammaModel(_Model):
    """Gamma-Gamma model of the average spend per transaction (Fader, Hardie & Lee 2005).

    Each transaction's value is Gamma(p, nu) (shape, rate); ``nu`` varies
    across customers as Gamma(q, gamma). A customer's mean spend is
    ``p / nu``; the population mean ``p gamma / (q - 1)``.

    Parameters
    ----------
    level : float
        Confidence level of intervals (0.95).

    Attributes
    ----------
    params_ : Series
        ``p``, ``q``, ``gamma`` (gamma in money units).
    summary : DataFrame
        ``estimate``, ``se``, ``lower``, ``upper`` by parameter.
    mean_spend_ : float
        Population mean spend per transaction, ``p gamma / (q - 1)``
        (infinite when q <= 1).
    n_ : float
        Customers fitted (those with repeat purchases); ``n_excluded_``
        customers without repeat purchases, who carry no information on spend.

    Notes
    -----
    Fitted on customers with at least one repeat purchase (frequency > 0), on
    their mean spend per repeat transaction, as in the source. The model
    assumes spend is independent of purchase frequency; check the correlation
    of frequency and monetary value before relying on it.

    Checked against Fader & Hardie (2013), "The Gamma-Gamma model of monetary
    value": on the 946 CDNOW customers with repeat purchases p = 6.25,
    q = 3.74 as printed; gamma comes out 15.448 against the printed 15.44,
    where the likelihood is so flat that the two differ by 2e-6 in
    log-likelihood.

    Examples
    --------
    >>> from kamtools import clv
    >>> data = clv.simulate_bgnbd(3000, r=1.0, alpha=5.0, a=0.8, b=2.5, T=52, seed=2)
    >>> data["monetary_value"] = clv.simulate_gamma_gamma(data["frequency"], p=6.0, q=4.0, gamma=15.0, seed=2)
    >>> gg = clv.GammaGammaModel().fit(data)
    >>> gg.params_.index.tolist()
    ['p', 'q', 'gamma']
    >>> bool(abs(gg.mean_spend_ - 6 * 15 / 3) < 3)
    True
    """

    _title = "Gamma-Gamma spend model"
    _names = ("p", "q", "gamma")

    def fit(self, df: pd.DataFrame, *, frequency: str = "frequency", monetary_value: str = "monetary_value",
            weights: str | None = None) -> GammaGammaModel:
        """Fit by maximum likelihood on customers with repeat purchases; returns ``self``.

        Rows with frequency > 0 and a monetary value <= 0 (credit notes
        outweighing purchases) cannot be fitted; they are left out with a
        :class:`~kamtools.DataWarning` that counts them.
        """
        who = "GammaGammaModel.fit"
        _columns(df, {"frequency": frequency, "monetary_value": monetary_value, "weights": weights}, who)
        self.columns_ = {"frequency": frequency, "monetary_value": monetary_value}
        x = _numeric(df, frequency, who)
        m = _numeric(df, monetary_value, who)
        if np.any(x < 0) | np.any(x != np.round(x)):
            _fail(df, frequency, (x < 0) | (x != np.round(x)), "not whole numbers >= 0",
                  "frequency counts repeat purchases", who)
        w = _weights(df, weights, who)
        rep = x > 0
        bad = rep & (m <= 0)
        if bad.any():
            warnings.warn(
                f"{who}: {int(bad.sum())} customer(s) with repeat purchases have a mean spend <= 0 (e.g. credit "
                f"notes); they are left out of the fit (first: {list(df.index[bad][:5])}).",
                DataWarning, stacklevel=2,
            )
        use = rep & (m > 0) & (w > 0)
        self.n_excluded_ = float(w[~use].sum())
        if use.sum() < 3:
            raise ParameterError(f"{who}: only {int(use.sum())} customer(s) with repeat purchases and a positive "
                                 "mean spend; the model needs many more.")
        scale = 1.0 / np.average(m[use], weights=w[use])
        (xu, mu), wu, _ = _group([x[use], m[use] * scale], w[use])
        vg = _gg_value_and_grad(xu, mu, wu)
        starts = [(2.0, 3.0, 1.0), (1.0, 2.0, 1.0), (6.0, 4.0, 0.5), (0.5, 1.5, 1.0)]
        est = _mle(vg, starts, list(self._names), n=wu.sum(), n_unique=len(xu), who=who,
                   advice="Try 1) checking that monetary_value is the mean spend per repeat transaction (not the "
                          "total); 2) more customers with repeat purchases; 3) removing extreme outliers.")
        est.est[2] /= scale
        d = np.diag(est.est)
        est.cov = d @ est.cov_log @ d
        est.se = np.sqrt(np.diag(est.cov))
        est.loglik = _gg_value_and_grad(xu, mu / scale, wu)(est.est)[0]
        self._set(est)
        p, q, g = est.est
        self.mean_spend_ = p * g / (q - 1) if q > 1 else np.inf
        return self

    def expected_spend(self, df: pd.DataFrame, *, interval: bool = False, level: float | None = None,
                       n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Expected mean spend per future transaction of each customer.

        ``E[M | x, m] = p (gamma + x m) / (p x + q - 1)``: a weighted average
        of the population mean and the customer's own mean, the weight on her
        own mean growing with her number of transactions. Customers without
        repeat purchases (or with a mean spend <= 0, left out of the fit) get
        the population mean.

        Returns
        -------
        DataFrame
            Indexed like ``df``: ``expected_spend`` (``lower``, ``upper``).
        """
        self._check_fitted()
        who = "GammaGammaModel.expected_spend"
        _columns(df, self.columns_, who)
        x = _numeric(df, self.columns_["frequency"], who)
        m = _numeric(df, self.columns_["monetary_value"], who)
        xs, m = _spend_inputs(x, m)
        q = float(self.params_["q"])
        if q <= 1 and (np.asarray(xs) == 0).any():
            raise ParameterError(
                f"{who}: the fitted q = {q:.3g} is not above 1, so the population mean spend p*gamma/(q-1) is "
                "undefined and customers without repeat purchases have no expected spend. Try 1) more customers "
                "with repeat purchases in the fit; 2) leaving out extreme spends; 3) the customers' own mean spend "
                "instead of the model."
            )
        (xu, mu), _, inv = _group([xs, m], np.ones(len(x)))
        out = self._with_interval(lambda p: _gg_spend(p, xu, mu), interval, level, n_draws, seed, "expected_spend")
        return pd.DataFrame({k: v[inv] for k, v in out.items()}, index=df.index)

    def customer_lifetime_value(self, purchases: BetaGeoModel, df: pd.DataFrame, *, horizon: float,
                                discount: float, period: float = 1.0, margin: float = 1.0, interval: bool = True,
                                level: float | None = None, n_draws: int = 1000, seed=0) -> pd.DataFrame:
        """Discounted CLV of each customer over ``horizon``: BG/NBD purchases x Gamma-Gamma spend.

        The horizon is cut into steps of ``period`` time units; the
        purchases expected in step k (from the BG/NBD, conditional on the
        customer's history) times the expected spend per purchase (from this
        model) times ``margin`` is discounted by ``(1 + discount)**k``, as if
        paid at the end of the step, and summed.

        Parameters
        ----------
        purchases : BetaGeoModel
            Fitted on the same customers' frequency, recency and T.
        df : DataFrame
            One row per customer with the columns both models were fitted on.
        horizon : float
            Time units ahead (in the summary's unit, e.g. 52 weeks).
        discount : float
            Discount rate per ``period``.
        period : float
            Length of a discounting step in time units (e.g. 52 / 12 for
            monthly steps on weekly data).
        margin : float
            Profit margin on spend (1 if the monetary value already is margin).
        interval : bool
            Add ``lower`` and ``upper`` from joint draws of both models'
            parameters (independent across the two models, which are fitted
            separately).

        Returns
        -------
        DataFrame
            Indexed like ``df``: ``expected_purchases`` (over the horizon),
            ``expected_spend``, ``clv`` (and ``lower``, ``upper``).
        """
        self._check_fitted()
        if not isinstance(purchases, BetaGeoModel):
            raise ParameterError("purchases must be a fitted BetaGeoModel (the purchase model).")
        purchases._check_fitted()
        who = "GammaGammaModel.customer_lifetime_value"
        x, tx, T = purchases._arrays(df, who)
        _columns(df, self.columns_, who)
        m = _numeric(df, self.columns_["monetary_value"], who)
        xs, m = _spend_inputs(x, m)
        d = _check_discount(discount)
        if not (float(horizon) > 0 and float(period) > 0):
            raise ParameterError(f"horizon={horizon!r} and period={period!r} must be positive times.")
        steps = np.minimum(np.arange(1, math.ceil(float(horizon) / float(period) - 1e-9) + 1) * float(period),
                           float(horizon))
        disc = (1 + d) ** -np.arange(1, len(steps) + 1)
        (xu, tu, Tu, xsu, mu), _, inv = _group([x, tx, T, xs, m], np.ones(len(x)))

        def value(pb, pg):
            cum = np.stack([_bgnbd_conditional(pb, s, xu, tu, Tu) for s in steps])  # (steps, n, k)
            inc = np.diff(np.concatenate([np.zeros_like(cum[:1]), cum]), axis=0)
            return (inc * disc[:, None, None]).sum(axis=0) * _gg_spend(pg, xsu, mu) * float(margin), cum[-1]

        val, cum = value(purchases._est.est[:, None], self._est.est[:, None])
        out = {"expected_purchases": cum[:, 0], "expected_spend": _gg_spend(self._est.est[:, None], xsu, mu)[:, 0],
               "clv": val[:, 0]}
        if interval:
            level = self.level if level is None else _check_level(level)
            n_draws = _check_draws(n_draws)
            rng = np.random.default_rng(seed)
            s1, s2 = rng.integers(0, 2**32, size=2)
            vb = purchases._est.draws(n_draws, s1)
            vg_ = self._est.draws(n_draws, s2)
            chunk = max(1, int(2e6 // max(len(xu) * len(steps), 1)))
            vals = np.concatenate([value(vb[i:i + chunk].T, vg_[i:i + chunk].T)[0]
                                   for i in range(0, n_draws, chunk)], axis=1)
            out["lower"], out["upper"] = _quantiles(vals, level)
        return pd.DataFrame({k: v[inv] for k, v in out.items()}, index=df.index)


def _spend_inputs(x, m):
    """Frequency and mean spend as the spend model sees them: no information without a positive mean spend."""
    info = (x > 0) & (m > 0)
    return np.where(info, x, 0.0), np.where(info, m, 0.0)


def _gg_spend(params, x, m):
    p, q, g = (v[None, :] for v in params)
    x, m = np.asarray(x, dtype=float)[:, None], np.asarray(m, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return p * (g + x * m) / (p * x + q - 1)


# --------------------------------------------------------------------------- transaction summaries

_FREQS = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y", "A": "Y"}


def _period_codes(dates: np.ndarray, freq: str) -> np.ndarray:
    """Integer period number of each datetime64[ns] date (consecutive periods differ by 1)."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    if freq == "D":
        return days
    if freq == "W":
        return (days + 3) // 7  # weeks Monday-Sunday (1970-01-01 was a Thursday), like pandas' "W"
    months = dates.astype("datetime64[M]").astype(np.int64)
    if freq == "M":
        return months
    if freq == "Q":
        return months // 3
    return months // 12


def _check_freq(freq) -> str:
    key = str(freq).strip().upper()
    if key not in _FREQS:
        raise ParameterError(f"freq={freq!r}; use 'D' (days), 'W' (weeks), 'M' (months), 'Q' or 'Y' as the time "
                             "unit of frequency, recency and T.")
    return _FREQS[key]


def summarise_transactions(transactions: pd.DataFrame, *, customer: str, date: str, value: str | None = None,
                           freq: str = "W", calibration_end=None, observation_end=None) -> pd.DataFrame:
    """Frequency, recency, T and monetary value per customer from a transaction log.

    Follows the conventions of Fader, Hardie & Lee (2005) and of the
    ``lifetimes`` package: dates are bucketed into periods of ``freq``
    (several transactions in one period count as one purchase, their values
    summed); the first purchase is not counted.

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction (invoice line).
    customer, date : str
        Columns of the customer identifier and the transaction date.
    value : str, optional
        Column of the transaction's value (revenue or margin); without it no
        monetary columns.
    freq : {"D", "W", "M", "Q", "Y"}
        Time unit of recency and T, and the bucket of a "purchase". Weeks run
        Monday to Sunday.
    calibration_end : date, optional
        Last day of the calibration period. With it, transactions after it
        (up to ``observation_end``) form the holdout period.
    observation_end : date, optional
        Last day observed. Default: the last transaction date.

    Returns
    -------
    DataFrame
        One row per customer with a purchase in the calibration period
        (sorted by customer): the ``customer`` column, ``frequency`` (repeat
        purchases: periods with a purchase after the first), ``recency``
        (periods from the first to the last purchase), ``T`` (periods from the
        first purchase to the end of the calibration period, or of
        observation), ``monetary_value`` (mean value of the repeat purchases;
        0 without any). With ``calibration_end`` also ``frequency_holdout``
        (periods with a purchase in the holdout), ``monetary_value_holdout``
        (their mean value; 0 without any) and ``duration_holdout`` (periods
        from the calibration end to the observation end).

    Warns
    -----
    DataWarning
        With counts, for transactions after ``observation_end`` and for
        customers whose first purchase is in the holdout period; both are
        left out.

    Notes
    -----
    Checked against Fader, Hardie & Lee's CDNOW summary: on the CDNOW sample
    log with ``freq="D"`` and the calibration ending 1997-09-30, frequency,
    recency / 7 and T / 7 (weeks) and the mean repeat spend equal their
    published table for all 2,357 customers.

    Examples
    --------
    >>> import pandas as pd
    >>> from kamtools import clv
    >>> log = pd.DataFrame({
    ...     "customer": ["a", "a", "a", "b"],
    ...     "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-15", "2024-01-08"]),
    ...     "value": [10.0, 5.0, 20.0, 7.0]})
    >>> clv.summarise_transactions(log, customer="customer", date="date", value="value",
    ...                            observation_end="2024-01-31")
      customer  frequency  recency    T  monetary_value
    0        a          1      2.0  4.0            20.0
    1        b          0      0.0  3.0             0.0
    """
    who = "summarise_transactions"
    freq = _check_freq(freq)
    _columns(transactions, {"customer": customer, "date": date, "value": value}, who)
    cust = transactions[customer]
    if cust.isna().any():
        _fail(transactions, customer, cust.isna().to_numpy(), "missing", "give every transaction a customer", who,
              "transactions")
    dt = transactions[date]
    if not pd.api.types.is_datetime64_any_dtype(dt):
        try:
            dt = pd.to_datetime(dt)
        except (TypeError, ValueError) as err:
            raise SchemaError(f"{who}: column {date!r} holds values that are not dates ({err}).") from err
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_localize(None)
    if dt.isna().any():
        _fail(transactions, date, dt.isna().to_numpy(), "missing dates", "fill or drop these rows", who,
              "transactions")
    d = dt.to_numpy(dtype="datetime64[ns]", copy=False)
    v = None
    if value is not None:
        v = _numeric(transactions, value, who, "transactions")
    obs_end = _as_date(observation_end, "observation_end") if observation_end is not None else d.max()
    cal_end = _as_date(calibration_end, "calibration_end") if calibration_end is not None else None
    if cal_end is not None and cal_end >= obs_end:
        raise ParameterError(f"{who}: calibration_end={calibration_end!r} must be before observation_end "
                             f"({pd.Timestamp(obs_end).date()}).")
    # dates are compared at day precision: a transaction on the end day belongs to the period
    day = d.astype("datetime64[D]")
    late = day > np.datetime64(obs_end, "D")
    if late.any():
        warnings.warn(f"{who}: {int(late.sum())} transaction(s) after observation_end "
                      f"{pd.Timestamp(obs_end).date()} are left out.", DataWarning, stacklevel=2)
    codes, uniques = pd.factorize(cust[~late] if late.any() else cust, sort=True)
    day = day[~late] if late.any() else day
    per = _period_codes(day, freq)
    if v is not None and late.any():
        v = v[~late]
    cal_code = None if cal_end is None else _period_codes(np.array([cal_end], dtype="datetime64[D]"), freq)[0]
    obs_code = _period_codes(np.array([obs_end], dtype="datetime64[D]"), freq)[0]
    hold_part = None if cal_end is None else (day > np.datetime64(cal_end, "D")).astype(np.int8)
    del day
    stats = _per_customer(codes, per, v, len(uniques), hold_part)
    cal = stats[0]
    has = cal["n"] > 0
    end_code = obs_code if cal_end is None else cal_code
    out = pd.DataFrame({
        customer: uniques[has],
        "frequency": (cal["n"][has] - 1).astype(np.int64),
        "recency": (cal["last"][has] - cal["first"][has]).astype(float),
        "T": (end_code - cal["first"][has]).astype(float),
    })
    if v is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = np.where(cal["n"] > 1, (cal["total"] - cal["first_value"]) / (cal["n"] - 1), 0.0)
        out["monetary_value"] = mv[has]
    if cal_end is not None:
        only_holdout = ~has & (np.bincount(codes, minlength=len(uniques)) > 0)
        if only_holdout.any():
            warnings.warn(f"{who}: {int(only_holdout.sum())} customer(s) first bought in the holdout period (after "
                          f"{pd.Timestamp(cal_end).date()}); they are left out, as they have no calibration "
                          "history.", DataWarning, stacklevel=2)
        hold = stats[1]
        out["frequency_holdout"] = hold["n"][has].astype(np.int64)
        if v is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                mh = np.where(hold["n"] > 0, hold["total"] / np.maximum(hold["n"], 1), 0.0)
            out["monetary_value_holdout"] = mh[has]
        out["duration_holdout"] = float(obs_code - cal_code)
    return out


def _as_date(value, name):
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name}={value!r} is not a date; write it as 'YYYY-MM-DD'.") from err
    if ts is pd.NaT:
        raise ParameterError(f"{name}={value!r} is not a date; write it as 'YYYY-MM-DD'.")
    return np.datetime64(ts.normalize().to_datetime64(), "D")


def _per_customer(codes, per, v, n_cust, part=None) -> list[dict]:
    """Per customer and part (calibration 0, holdout 1): distinct purchase periods, first and last period,
    total value and the value of the first period.

    One sort of a combined (customer, part, period) key; customer, part and
    period are read back from the sorted key, so only the values need
    gathering, and both parts come from the same sort.
    """
    parts = 1 if part is None else 2
    out = [{"n": np.zeros(n_cust, dtype=np.int64), "first": np.zeros(n_cust, dtype=np.int64),
            "last": np.zeros(n_cust, dtype=np.int64), "total": np.zeros(n_cust), "first_value": np.zeros(n_cust)}
           for _ in range(parts)]
    if not len(codes):
        return out
    pmin = per.min()
    span = np.int64(per.max() - pmin + 1)
    key = codes.astype(np.int64) * parts
    if part is not None:
        key += part
    key *= span
    key += per - pmin
    if v is None:
        ks = np.sort(key)
    else:
        order = np.argsort(key)
        ks = key[order]
    del key
    new = np.empty(len(ks), dtype=bool)
    new[0] = True
    np.not_equal(ks[1:], ks[:-1], out=new[1:])
    start = np.flatnonzero(new)  # first row of each (customer, part, period)
    del new
    pairs = ks[start]
    del ks
    pv = np.add.reduceat(v[order], start) if v is not None else None  # value per (customer, part, period)
    del start
    group = pairs // span
    for k in range(parts):
        sel = np.flatnonzero(group % parts == k) if parts > 1 else slice(None)
        c = group[sel] // parts
        if not len(c):
            continue
        pk = pairs[sel] % span + pmin
        cnew = np.empty(len(c), dtype=bool)
        cnew[0] = True
        np.not_equal(c[1:], c[:-1], out=cnew[1:])
        cstart = np.flatnonzero(cnew)  # first (customer, period) of each customer
        cid = c[cstart]
        o = out[k]
        o["n"][cid] = np.diff(np.r_[cstart, len(c)])
        o["first"][cid] = pk[cstart]
        o["last"][cid] = pk[np.r_[cstart[1:], len(c)] - 1]
        if pv is not None:
            pvk = pv[sel]
            o["total"][cid] = np.add.reduceat(pvk, cstart)
            o["first_value"][cid] = pvk[cstart]
    return out


def calibration_holdout_table(summary: pd.DataFrame, model: BetaGeoModel | None = None, *,
                              predicted: str | None = None, max_frequency: int = 7, bins: int | None = None,
                              frequency: str = "frequency", recency: str = "recency", T: str = "T",
                              frequency_holdout: str = "frequency_holdout",
                              duration_holdout: str = "duration_holdout") -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual and predicted.

    Parameters
    ----------
    summary : DataFrame
        One row per customer with calibration and holdout columns, from
        :func:`summarise_transactions` or computed elsewhere (name the columns
        with the keyword arguments).
    model : BetaGeoModel, optional
        Predicts each customer's holdout purchases over her
        ``duration_holdout``.
    predicted : str, optional
        Or a column of predictions made elsewhere.
    max_frequency : int
        Calibration frequencies above it are pooled into one group
        ``">= max_frequency"``.
    bins : int, optional
        Instead, group customers into about this many ranges of calibration
        frequency holding similar numbers of customers (quantiles; labelled
        ``"lo-hi"``): for frequent buyers, such as key accounts.

    Returns
    -------
    DataFrame
        One row per group of calibration frequency: ``frequency`` (the group,
        text), ``customers``, ``actual`` and ``predicted`` (mean holdout
        purchases).
    """
    d = _holdout_frame(summary, model, predicted, frequency, recency, T, frequency_holdout, duration_holdout,
                       "calibration_holdout_table")
    if bins is not None:
        if not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ParameterError(f"bins={bins!r} must be a whole number >= 1.")
        grp = pd.qcut(d["frequency"], int(bins), duplicates="drop")
        lo = d["frequency"].groupby(grp, observed=True).min()
        hi = d["frequency"].groupby(grp, observed=True).max()
        names = {g: (f"{lo[g]:g}" if lo[g] == hi[g] else f"{lo[g]:g}-{hi[g]:g}") for g in lo.index}
        out = d.groupby(grp, observed=True).agg(customers=("actual", "size"), actual=("actual", "mean"),
                                                predicted=("predicted", "mean"))
        out.index = pd.Index([names[g] for g in out.index], name="frequency")
        return out.reset_index()
    k = int(max_frequency)
    if k < 1:
        raise ParameterError(f"max_frequency={max_frequency!r} must be a whole number >= 1.")
    grp = np.minimum(d["frequency"], k)
    out = d.groupby(grp).agg(customers=("actual", "size"), actual=("actual", "mean"),
                             predicted=("predicted", "mean"))
    labels = [f">= {k}" if g == k else str(int(g)) for g in out.index]
    out.index = pd.Index(labels, name="frequency")
    return out.reset_index()


def _holdout_frame(summary, model, predicted, frequency, recency, T, frequency_holdout, duration_holdout, who):
    if (model is None) == (predicted is None):
        raise ParameterError(f"{who}: pass either model= (a fitted BetaGeoModel) or predicted= (a column of "
                             "predicted holdout purchases), not both or neither.")
    cols = {"frequency": frequency, "frequency_holdout": frequency_holdout}
    if predicted is not None:
        cols["predicted"] = predicted
    else:
        cols.update({"recency": recency, "T": T, "duration_holdout": duration_holdout})
    _columns(summary, cols, who)
    x = _numeric(summary, frequency, who)
    actual = _numeric(summary, frequency_holdout, who)
    if predicted is not None:
        pred = _numeric(summary, predicted, who)
    else:
        if not isinstance(model, BetaGeoModel):
            raise ParameterError(f"{who}: model must be a fitted BetaGeoModel.")
        model._check_fitted()
        tx = _numeric(summary, recency, who)
        TT = _numeric(summary, T, who)
        dur = _numeric(summary, duration_holdout, who)
        (xu, tu, Tu, du), _, inv = _group([x, tx, TT, dur], np.ones(len(x)))
        est = model._est.est[:, None]
        pred = np.empty(len(xu))
        for val in np.unique(du):
            s = du == val
            pred[s] = _bgnbd_conditional(est, float(val), xu[s], tu[s], Tu[s])[:, 0]
        pred = pred[inv]
    return pd.DataFrame({"frequency": x, "actual": actual, "predicted": pred}, index=summary.index)


def holdout_metrics(summary: pd.DataFrame, model: BetaGeoModel | None = None, *, predicted: str | None = None,
                    frequency: str = "frequency", recency: str = "recency", T: str = "T",
                    frequency_holdout: str = "frequency_holdout",
                    duration_holdout: str = "duration_holdout") -> pd.DataFrame:
    """How well predicted holdout purchases match the actual ones.

    Works on summaries made by :func:`summarise_transactions` or elsewhere
    (name the columns), with predictions from a fitted :class:`BetaGeoModel`
    or given in a column (``predicted=``).

    Returns
    -------
    DataFrame
        Index ``metric``, column ``value``: ``customers``, ``actual_total``,
        ``predicted_total``, ``total_error_pct`` (100 (predicted - actual) /
        actual), ``mae`` and ``rmse`` per customer, ``correlation`` (Pearson,
        actual vs predicted), ``mae_naive`` (MAE of predicting each customer's
        calibration purchase rate, ``frequency / T * duration``; needs T and
        duration columns, else missing).

    Examples
    --------
    >>> import pandas as pd
    >>> from kamtools import clv
    >>> s = pd.DataFrame({"frequency": [0, 2, 5], "frequency_holdout": [0, 1, 4], "pred": [0.5, 1.5, 3.0]})
    >>> clv.holdout_metrics(s, predicted="pred").loc[["actual_total", "predicted_total", "mae"], "value"].tolist()
    [5.0, 5.0, 0.6666666666666666]
    """
    who = "holdout_metrics"
    d = _holdout_frame(summary, model, predicted, frequency, recency, T, frequency_holdout, duration_holdout, who)
    a, p = d["actual"].to_numpy(), d["predicted"].to_numpy()
    err = p - a
    naive = np.nan
    if T in summary.columns and duration_holdout in summary.columns:
        TT = _numeric(summary, T, who)
        dur = _numeric(summary, duration_holdout, who)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(TT > 0, d["frequency"].to_numpy() / TT, 0.0)
        naive = float(np.mean(np.abs(rate * dur - a)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = float(np.corrcoef(a, p)[0, 1]) if len(a) > 1 and a.std() > 0 and p.std() > 0 else np.nan
        pct = 100 * (p.sum() - a.sum()) / a.sum() if a.sum() else np.nan
    vals = {
        "customers": float(len(a)), "actual_total": float(a.sum()), "predicted_total": float(p.sum()),
        "total_error_pct": float(pct), "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))),
        "correlation": corr, "mae_naive": naive,
    }
    return pd.DataFrame({"value": vals}).rename_axis("metric")


def plot_calibration_holdout(summary: pd.DataFrame, model: BetaGeoModel | None = None, *,
                             predicted: str | None = None, max_frequency: int = 7, bins: int | None = None, ax=None,
                             **columns):
    """Mean holdout purchases by calibration frequency, actual vs predicted.

    Takes the arguments of :func:`calibration_holdout_table` (column names
    as keywords). Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure

    tab = calibration_holdout_table(summary, model, predicted=predicted, max_frequency=max_frequency, bins=bins,
                                    **columns)
    if ax is None:
        fig = Figure(figsize=(6.5, 4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    xs = np.arange(len(tab))
    ax.plot(xs, tab["actual"], "o-", color="#1f4e79", label="actual")
    ax.plot(xs, tab["predicted"], "s--", color="#c55a11", label="predicted")
    ax.set_xticks(xs, tab["frequency"])
    ax.set_xlabel("purchases in the calibration period (repeat)")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Calibration vs holdout purchases")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_clv(df: pd.DataFrame, *, value: str = "clv", lower: str = "lower", upper: str = "upper",
             label: str | None = None, top: int = 20, ax=None, xlabel: str = "CLV"):
    """The largest values with their intervals, one row per customer (a forest plot).

    Parameters
    ----------
    df : DataFrame
        One row per customer, e.g. from
        :meth:`GammaGammaModel.customer_lifetime_value` or
        :meth:`ShiftedBetaGeometric.residual_value` (with ``value=
        "residual_value"``).
    value, lower, upper : str
        Columns of the estimate and its interval.
    label : str, optional
        Column naming the customers (default: the index).
    top : int
        How many of the largest values to show.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    _columns(df, {"value": value, "lower": lower, "upper": upper, "label": label}, "plot_clv")
    d = df.nlargest(int(top), value).iloc[::-1]
    names = (d[label] if label else pd.Series(d.index, index=d.index)).astype(str).to_numpy()
    if ax is None:
        fig = Figure(figsize=(7, 1 + 0.3 * len(d)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    y = np.arange(len(d))
    v = d[value].to_numpy(dtype=float)
    err = np.vstack([v - d[lower].to_numpy(dtype=float), d[upper].to_numpy(dtype=float) - v])
    ax.errorbar(v, y, xerr=np.clip(err, 0, None), fmt="o", color="#1f4e79", capsize=3)
    ax.set_yticks(y, names)
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    ax.set_title(f"Top {len(d)} by {xlabel}, with intervals")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# --------------------------------------------------------------------------- contracts


def contract_renewals(data, *, as_of=None) -> pd.DataFrame:
    """One row per account with its contract history, ready for :class:`ShiftedBetaGeometric`.

    Parameters
    ----------
    data : KamData, or anything :func:`kamtools.load` accepts
        Needs the contracts table with ``start``, ``end``, ``outcome``.
    as_of : date, optional
        The date the data are seen from (default: the last transaction date).
        Terms starting after it are ignored; terms running at ``as_of`` count
        as active whatever their recorded outcome.

    Returns
    -------
    DataFrame
        ``account_id``, ``first_start`` (start of the first recorded term),
        ``terms`` (terms started), ``renewals`` (terms ended and renewed),
        ``churned`` (the last term ended on or before ``as_of`` as
        ``lapsed``), ``duration`` (the sBG duration: ``terms`` for a lost
        account, ``renewals`` otherwise), ``term_years`` (mean term length in
        years), ``value_per_term`` (mean contract value per term),
        ``value_per_year``, ``margin_rate`` (the account's gross margin /
        revenue over its transactions up to ``as_of``; missing without a
        cost column), ``is_key_account``.

    Notes
    -----
    Periods are contract terms: a renewal decision comes at the end of each
    term, whatever its length. The first recorded term is taken as the
    account's first, so accounts that were customers before the data begin
    look younger than they are (left truncation).

    Examples
    --------
    >>> import kamtools as kt
    >>> c = kt.clv.contract_renewals(kt.sample.load())
    >>> c.columns.tolist()[:6]
    ['account_id', 'first_start', 'terms', 'renewals', 'churned', 'duration']
    """
    from kamtools import periods as _periods
    from kamtools.io import load

    data = load(data)
    con = data.contracts
    if con is None or not {"start", "end", "outcome"} <= set(con.columns):
        raise ParameterError("contract_renewals needs the contracts table with start, end and outcome columns. "
                             "Without contracts, use summarise_transactions() and the BG/NBD model.")
    tx = data.transactions
    as_of = _periods.as_of_date(as_of, tx["date"].max())
    c = con[con["start"] <= as_of].sort_values(["account_id", "start"], kind="stable")
    if not len(c):
        raise ParameterError(f"contract_renewals: no contract starts on or before as_of={as_of.date()}.")
    ended = c["end"].notna() & (c["end"] <= as_of)
    lapsed = ended & c["outcome"].eq("lapsed")
    renewed = ended & c["outcome"].isin(["renewed", "renewed_after_rebid"])
    years = ((c["end"].fillna(as_of) - c["start"]).dt.days + 1) / 365.25
    g = c.assign(_lapsed=lapsed, _renewed=renewed, _years=years).groupby("account_id", sort=True)
    out = pd.DataFrame({
        "first_start": g["start"].min(),
        "terms": g.size(),
        "renewals": g["_renewed"].sum().astype(np.int64),
        "churned": g["_lapsed"].last().astype(bool),
        "term_years": g["_years"].mean(),
        "value_per_term": g["value"].mean() if "value" in c.columns else np.nan,
        "_value": g["value"].sum() if "value" in c.columns else np.nan,
        "_years": g["_years"].sum(),
    })
    out["duration"] = np.where(out["churned"], out["renewals"] + 1, out["renewals"])
    out["value_per_year"] = out.pop("_value") / out.pop("_years")
    t = tx[tx["date"] <= as_of]
    if "cost" in t.columns:
        s = t.groupby("account_id")[["revenue", "cost"]].sum()
        rate = (s["revenue"] - s["cost"]) / s["revenue"].where(s["revenue"] > 0)
        out["margin_rate"] = rate.reindex(out.index)
    else:
        out["margin_rate"] = np.nan
    key = data.accounts.set_index("account_id")["is_key_account"]
    out["is_key_account"] = key.reindex(out.index).fillna(False).astype(bool)
    out = out.reset_index()
    return out[["account_id", "first_start", "terms", "renewals", "churned", "duration", "term_years",
                "value_per_term", "value_per_year", "margin_rate", "is_key_account"]]


# --------------------------------------------------------------------------- simulation


def simulate_sbg(n: int, *, alpha: float, beta: float, periods: int, seed=None) -> pd.DataFrame:
    """Customers from a shifted-beta-geometric model, observed for ``periods`` periods.

    Returns
    -------
    DataFrame
        ``duration`` (periods to loss, or ``periods`` if still active) and
        ``event`` (lost within the window), one row per customer.

    Examples
    --------
    >>> from kamtools import clv
    >>> clv.simulate_sbg(3, alpha=1.0, beta=2.0, periods=5, seed=0).columns.tolist()
    ['duration', 'event']
    """
    rng = np.random.default_rng(seed)
    theta = rng.beta(alpha, beta, size=int(n))
    t = rng.geometric(np.clip(theta, 1e-12, 1))
    return pd.DataFrame({"duration": np.minimum(t, periods).astype(np.int64), "event": t <= periods})


def simulate_bgnbd(n: int, *, r: float, alpha: float, a: float, b: float, T, seed=None) -> pd.DataFrame:
    """Customer summaries (frequency, recency, T) from a BG/NBD model.

    Each customer makes her first purchase at time 0; purchase rates are
    Gamma(r, alpha) (shape, rate), dropout probabilities Beta(a, b); she may
    drop out after each repeat purchase. ``T`` is the observation length, one
    for all or one per customer.

    Examples
    --------
    >>> from kamtools import clv
    >>> clv.simulate_bgnbd(3, r=0.5, alpha=5, a=1, b=3, T=39, seed=0).columns.tolist()
    ['frequency', 'recency', 'T']
    """
    rng = np.random.default_rng(seed)
    n = int(n)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(r, 1 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    x = np.zeros(n, dtype=np.int64)
    tx = np.zeros(n)
    idx = np.arange(n)
    now = np.zeros(n)
    while idx.size:
        nxt = now[idx] + rng.exponential(1.0, idx.size) / lam[idx]
        ok = nxt <= T[idx]
        idx, nxt = idx[ok], nxt[ok]
        x[idx] += 1
        tx[idx] = nxt
        now[idx] = nxt
        idx = idx[rng.random(idx.size) >= p[idx]]
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def simulate_gamma_gamma(frequency, *, p: float, q: float, gamma: float, seed=None):
    """Mean spend per repeat transaction from a Gamma-Gamma model (0 without repeat purchases).

    Returns an array, or a Series indexed like ``frequency``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1 / gamma, size=x.shape)
    total = rng.gamma(np.where(x > 0, p * x, 1.0), 1.0) / nu
    m = np.where(x > 0, total / np.maximum(x, 1), 0.0)
    if isinstance(frequency, pd.Series):
        return pd.Series(m, index=frequency.index, name="monetary_value")
    return m
