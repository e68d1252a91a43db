"""How long do the ROI estimators take on a large portfolio?

Generates a portfolio (default 5,000 accounts over five years), then times, in
the same run:

- baseline: the monthly gross margin per account as one pandas groupby-sum of
  the transactions (the least work any ROI analysis must do);
- kt.roi.panel (the account x month panel, through kt.compute);
- kt.roi.staggered on that panel (group-time DiD with analytic standard errors);
- kt.roi.did with account and month effects (two-way fixed effects, statsmodels);
- kt.roi.event_study (staggered, 6 leads and 24 lags);
- kt.roi.match_controls (nearest neighbour);
- kt.roi.programme_roi end to end (panel + staggered + costs + 1,999 bootstrap draws).

Prints seconds (best of three; one run for the slower steps), peak memory
(tracemalloc, in a separate run: Python allocations incl. numpy/pandas buffers)
and ratios against the baseline. Not a test: run it by hand,
``.venv/bin/python benchmarks/bench_roi.py [--accounts N]``.
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

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    data = kt.sample.generate(n_accounts=args.accounts, seed=args.seed)
    print(f"generated {args.accounts:,} accounts in {time.perf_counter() - t0:.1f} s")
    print(data)

    import statsmodels.api  # noqa: F401  (import once, outside the timings)

    tx = data.transactions

    def baseline():
        margin = tx["revenue"] - tx["cost"]
        return margin.groupby([tx["account_id"], tx["date"].dt.to_period("M")]).sum()

    cols = dict(outcome="gross_margin", unit="account_id", time="period", cohort="cohort")
    _, base_s, base_mb = measure(baseline)
    p, panel_s, panel_mb = measure(lambda: kt.roi.panel(data))
    st, st_s, st_mb = measure(lambda: kt.roi.staggered(p, **cols))
    _, twfe_s, twfe_mb = measure(
        lambda: kt.roi.did(p, outcome="gross_margin", treated="treated", post="post", unit="account_id", time="period"),
        repeat=1,
    )
    _, es_s, es_mb = measure(lambda: kt.roi.event_study(p, **cols, lags=24), repeat=1)
    _, m_s, m_mb = measure(lambda: kt.roi.match_controls(p), repeat=1)
    r, roi_s, roi_mb = measure(lambda: kt.roi.programme_roi(data), repeat=1)
    rows = [
        ("baseline groupby-sum margin by month", base_s, base_mb),
        ("kt.roi.panel", panel_s, panel_mb),
        ("kt.roi.staggered", st_s, st_mb),
        ("kt.roi.did (two-way fixed effects)", twfe_s, twfe_mb),
        ("kt.roi.event_study (staggered)", es_s, es_mb),
        ("kt.roi.match_controls (nearest)", m_s, m_mb),
        ("kt.roi.programme_roi (end to end)", roi_s, roi_mb),
    ]
    print()
    print(f"{'what':40s} {'seconds':>9s} {'peak MB':>9s} {'x baseline':>11s}")
    for name, s, mb in rows:
        print(f"{name:40s} {s:9.3f} {mb:9.1f} {s / base_s:11.1f}")
    print(f"\n{len(p):,} panel rows; {st.n:,} treated account-months; {len(st.att_gt):,} group-time cells")
    print(
        f"uplift {st.effect:,.0f} (truth {data.truth.uplift_margin_per_month:,.0f}); "
        f"ROI {r.roi:.2f} [{r.roi_ci[0]:.2f}, {r.roi_ci[1]:.2f}] (truth {data.truth.programme_roi:.2f})"
    )


if __name__ == "__main__":
    main()
