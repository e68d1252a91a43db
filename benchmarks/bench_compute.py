"""How long does kt.compute take for the whole catalogue on a large portfolio?

Generates a portfolio (default 5,000 accounts over five years), then times, in
the same run:

- baseline: one pandas groupby-sum of revenue by account and quarter (the least
  work any KPI tool must do);
- kt.compute for one KPI (revenue), and for all KPIs, by account and quarter.

Prints seconds (best of three, one run for all KPIs), peak memory (tracemalloc, in a
separate run: Python allocations incl. numpy/pandas buffers) and ratios against the baseline. Not a test: run it by hand,
``.venv/bin/python benchmarks/bench_compute.py [--accounts N]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

from _measure import measure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import kamtools as kt

    t0 = time.perf_counter()
    data = kt.sample.generate(n_accounts=args.accounts, seed=args.seed)
    print(f"generated {args.accounts:,} accounts in {time.perf_counter() - t0:.1f} s")
    print(data)

    tx = data.transactions

    def baseline():
        return tx.groupby(["account_id", tx["date"].dt.to_period("Q")])["revenue"].sum()

    warnings.simplefilter("ignore")
    _, base_s, base_mb = measure(baseline)
    one, one_s, one_mb = measure(lambda: kt.compute(data, ["revenue"], period="Q"))
    allk, all_s, all_mb = measure(lambda: kt.compute(data, period="Q"), repeat=1)
    n_kpis = allk["kpi"].nunique()
    print()
    print(f"{'what':38s} {'seconds':>9s} {'peak MB':>9s} {'x baseline':>11s}")
    print(f"{'baseline groupby-sum revenue':38s} {base_s:9.3f} {base_mb:9.1f} {1:11.1f}")
    print(f"{'kt.compute revenue':38s} {one_s:9.3f} {one_mb:9.1f} {one_s / base_s:11.1f}")
    print(f"{f'kt.compute all {n_kpis} KPIs':38s} {all_s:9.3f} {all_mb:9.1f} {all_s / base_s:11.1f}")
    print(f"\n{len(allk):,} result rows; {all_s / n_kpis * 1000:.0f} ms per KPI on average")


if __name__ == "__main__":
    main()
