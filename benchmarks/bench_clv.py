"""How long do the CLV models take on a million customers, and the transaction summary on 10 million rows?

Simulates, in the same run, a transaction log from the BG/NBD and Gamma-Gamma
models (default 1,000,000 customers, about 10 million transactions over three
years; first purchases spread over the first year), then times:

- baseline: a plain pandas groupby of the log by customer (first and last date,
  count, total value), the least work any summary must do;
- kt.clv.summarise_transactions on the whole log (weekly periods, a 26-week
  holdout): frequency, recency, T, monetary value, holdout columns;
- BetaGeoModel.fit on the 1,000,000 weekly summaries (identical rows grouped
  and weighted: whole weeks make them repeat);
- GammaGammaModel.fit on the customers with repeat purchases (monetary values
  are continuous, so nearly every row is distinct);
- both fits again on the simulation's exact per-customer summaries (continuous
  recency and T, the mean of the individual repeat transactions): no identical
  rows to group, and no weekly bucketing, so these estimates should recover the
  true parameters. Weekly buckets merge purchases made in the same week (their
  values summed) and round times to whole weeks, which shifts the estimates of
  the first two fits a little: that is the data, not the fitting.

Prints seconds (best of ``--repeat`` runs), peak memory (tracemalloc, in a
separate run: Python allocations incl. numpy/pandas buffers) and the ratio to the
baseline, plus the estimates against the true parameters. Not a test: run it by
hand, ``.venv/bin/python benchmarks/bench_clv.py [--customers N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _measure import measure

TRUTH_BG = {"r": 1.2, "alpha": 10.0, "a": 0.7, "b": 8.0}  # weekly purchase rate mean 0.12; dropout mean 0.08
TRUTH_GG = {"p": 4.0, "q": 5.0, "gamma": 80.0}  # mean spend per transaction 4 * 80 / 4 = 80
START = np.datetime64("2023-01-02")  # a Monday: weeks of the log line up with kamtools' Monday-Sunday weeks




WEEKS, HOLDOUT = 156, 26


def simulate_log(n: int, seed: int, weeks: float = WEEKS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transaction log (customer, date, value) and the customers' exact continuous summaries."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, 52, n)
    lam = rng.gamma(TRUTH_BG["r"], 1 / TRUTH_BG["alpha"], n)
    drop = rng.beta(TRUTH_BG["a"], TRUTH_BG["b"], n)
    nu = rng.gamma(TRUTH_GG["q"], 1 / TRUTH_GG["gamma"], n)
    cust, when = [np.arange(n)], [first]
    now, last, x = first.copy(), first.copy(), np.zeros(n, dtype=np.int64)
    idx = np.arange(n)
    while idx.size:
        nxt = now[idx] + rng.exponential(1.0, idx.size) / lam[idx]
        ok = nxt <= weeks
        idx, nxt = idx[ok], nxt[ok]
        cust.append(idx)
        when.append(nxt)
        now[idx], last[idx] = nxt, nxt
        x[idx] += 1
        idx = idx[rng.random(idx.size) >= drop[idx]]
    cust = np.concatenate(cust)
    when = np.concatenate(when)
    value = np.round(rng.gamma(TRUTH_GG["p"], 1.0, len(cust)) / nu[cust], 2)
    date = START + (when * 7 * 86400).astype("timedelta64[s]")
    log = pd.DataFrame({"customer": cust, "date": date.astype("datetime64[ns]"), "value": value})
    # calibration period only: purchases up to weeks - HOLDOUT
    cal = weeks - HOLDOUT
    in_cal = when <= cal
    first_row = np.zeros(len(cust), dtype=bool)
    first_row[:n] = True  # the first n rows are the first purchases
    rep = in_cal & ~first_row
    xc = np.bincount(cust[rep], minlength=n)
    lastc = np.maximum.reduceat(np.where(in_cal, when, -np.inf)[np.argsort(cust, kind="stable")],
                                np.r_[0, np.cumsum(np.bincount(cust, minlength=n))[:-1]])
    spend = np.bincount(cust[rep], weights=value[rep], minlength=n)
    keep = first < cal
    exact = pd.DataFrame({"frequency": xc, "recency": np.where(xc > 0, lastc - first, 0.0), "T": cal - first,
                          "monetary_value": np.where(xc > 0, spend / np.maximum(xc, 1), 0.0)})[keep]
    return log, exact


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from kamtools import clv

    t0 = time.perf_counter()
    log, exact = simulate_log(args.customers, args.seed)
    print(f"simulated {args.customers:,} customers, {len(log):,} transactions in {time.perf_counter() - t0:.1f} s")
    end = START + np.timedelta64(WEEKS * 7 - 1, "D")
    cal_end = START + np.timedelta64((WEEKS - HOLDOUT) * 7 - 1, "D")  # 130 weeks of calibration, 26 of holdout

    def baseline():
        return log.groupby("customer").agg(first=("date", "min"), last=("date", "max"), n=("date", "size"),
                                           total=("value", "sum"))

    def summary():
        return clv.summarise_transactions(log, customer="customer", date="date", value="value", freq="W",
                                          calibration_end=str(cal_end), observation_end=str(end))

    warnings.simplefilter("ignore")
    from scipy import optimize, special  # noqa: F401  (loaded before timing: the first fit pays no imports)

    rows = []
    _, base_s, base_mb = measure(baseline, args.repeat)
    rows.append(("baseline: pandas groupby of the log", base_s, base_mb))
    s, sum_s, sum_mb = measure(summary, args.repeat)
    rows.append((f"summarise_transactions ({len(log) / 1e6:.1f}M rows)", sum_s, sum_mb))
    bg, bg_s, bg_mb = measure(lambda: clv.BetaGeoModel().fit(s), args.repeat)
    rows.append((f"BG/NBD fit, weekly ({bg.n_unique_:,} distinct rows)", bg_s, bg_mb))
    gg, gg_s, gg_mb = measure(lambda: clv.GammaGammaModel().fit(s), args.repeat)
    rows.append((f"Gamma-Gamma fit ({gg.n_unique_:,} distinct rows)", gg_s, gg_mb))
    bgc, bgc_s, bgc_mb = measure(lambda: clv.BetaGeoModel().fit(exact), 1)
    rows.append((f"BG/NBD fit, exact ({bgc.n_unique_:,} distinct rows)", bgc_s, bgc_mb))
    ggc, ggc_s, ggc_mb = measure(lambda: clv.GammaGammaModel().fit(exact), 1)
    rows.append((f"Gamma-Gamma fit, exact ({ggc.n_unique_:,} distinct rows)", ggc_s, ggc_mb))

    print()
    print(f"{'what':48s} {'seconds':>9s} {'peak MB':>9s} {'x baseline':>11s}")
    for what, sec, mb in rows:
        print(f"{what:48s} {sec:9.2f} {mb:9.1f} {sec / base_s:11.1f}")

    print("\nestimates (standard error) against the truth")
    for name, model, truth in (("BG/NBD weekly", bg, TRUTH_BG), ("BG/NBD exact", bgc, TRUTH_BG),
                               ("Gamma-Gamma weekly", gg, TRUTH_GG), ("Gamma-Gamma exact", ggc, TRUTH_GG)):
        est = ", ".join(f"{k} {model.params_[k]:.4g} ({model.summary.loc[k, 'se']:.2g}; true {v:g})"
                        for k, v in truth.items())
        print(f"  {name:18s} {est}")
    m = clv.holdout_metrics(s, bg)["value"]
    print(f"\nholdout ({HOLDOUT} weeks): {m['actual_total']:,.0f} purchase weeks, predicted "
          f"{m['predicted_total']:,.0f} ({m['total_error_pct']:+.1f} %); MAE per customer {m['mae']:.3f} vs "
          f"{m['mae_naive']:.3f} for each customer's calibration rate")


if __name__ == "__main__":
    main()
