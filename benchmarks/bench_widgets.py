"""How long does a widget update take on the 200-account sample?

The widgets compute ``kt.compute`` once, when they are made, and an update only
filters and draws. This script measures, in one run:

- baseline: drawing and encoding one empty matplotlib figure as PNG (the least
  any update that shows a plot must do), and ``kt.compute`` of the whole catalogue
  (what an update would cost if it recomputed);
- making each widget from a shared ``kt.compute`` result;
- updates: setting a control's ``.value`` (the observers run synchronously), over
  a cycle of accounts, KPIs, targets and periods; the first update of a new
  segment in the explorer is included (its benchmark is computed then, and cached).

Prints seconds (median and worst update, wall clock and CPU), peak memory of one update cycle
(tracemalloc, in a separate run) and ratios against the baseline and the 0.5 s
budget. Not a test: run it by hand, ``.venv/bin/python benchmarks/bench_widgets.py``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import tracemalloc
import warnings

BUDGET = 0.5  # seconds per update (issue 7)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cpu_timed(fn):
    """Wall and CPU seconds of this process (CPU time hides other load on a shared machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", default="Q")
    parser.add_argument("--rounds", type=int, default=2, help="times each cycle of updates is run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from matplotlib.figure import Figure

    import kamtools as kt

    data = kt.sample.load()
    print(data)

    def blank_png():
        fig = Figure(figsize=(8.5, 5))
        fig.add_subplot()
        fig.savefig(io.BytesIO(), format="png", dpi=80)

    blank_png()
    base_s = min(timed(blank_png)[1] for _ in range(5))
    values, compute_s = timed(lambda: kt.compute(data, period=args.period))
    print(f"\nbaseline: empty figure as PNG {base_s:.3f} s; kt.compute of all "
          f"{values['kpi'].nunique()} KPIs by account and {args.period}: {compute_s:.2f} s")

    key = data.accounts.loc[data.accounts["is_key_account"].fillna(False).astype(bool), "account_id"].tolist()
    industries = data.accounts.set_index("account_id")["industry"]
    # accounts from different industries first, so the explorer meets new segments
    by_seg = list(dict.fromkeys(industries[key]))
    accounts = [industries[key][industries[key] == s].index[0] for s in by_seg] + key[:6]

    ex, ex_s = timed(lambda: kt.widgets.AccountExplorer(data, values=values))
    sd, sd_s = timed(lambda: kt.widgets.ScorecardDesigner(data, values=values))
    pm, pm_s = timed(lambda: kt.widgets.PortfolioMap(data, values=values))
    periods = ex.periods.options
    kpi_sets = [("revenue", "gross_margin_pct", "nps"), ("share_of_wallet",),
                ("revenue", "gross_margin_pct", "nps", "engagement_breadth")]
    cycles = {
        "AccountExplorer": (ex_s, [
            *[(ex.account, a) for a in accounts],
            (ex.compare, "segment"), (ex.compare, accounts[1]), (ex.compare, None),
            *[(ex.kpis, k) for k in kpi_sets],
            (ex.periods, (periods[-8], periods[-1])), (ex.periods, (periods[0], periods[-1])),
            (ex.segment, "region"), (ex.segment, "industry"),
        ]),
        "ScorecardDesigner": (sd_s, [
            *[(sd.target_sliders[k], sd.target_sliders[k].value * f) for k in ("nps", "gross_margin_pct")
              for f in (0.8, 1.2)],
            (sd.weights_mode, "fixed"), (sd.pillar_sliders["revenue"], 60), (sd.weights_mode, "tenure"),
            (sd.period, sd.period.options[-2]), (sd.period, sd.period.options[-1]),
            (sd.kpis, sd.kpis.value[:3]), (sd.kpis, sd.kpis.value),
            (sd.thresholds, (60.0, 85.0)), (sd.account, key[3]),
        ]),
        "PortfolioMap": (pm_s, [
            (pm.period, pm.period.options[-2]), (pm.period, pm.period.options[-1]),
            (pm.key_accounts, True), (pm.key_accounts, False),
            (pm.position, ("share_of_wallet",)), (pm.position, ("share_of_wallet", "executive_sponsorship")),
        ]),
    }

    def run(steps):
        out = []
        for control, value in steps:
            if control.value == value:
                continue
            out.append(cpu_timed(lambda c=control, v=value: setattr(c, "value", v)))
        return out

    print(f"\n{'widget':18s} {'make s':>7s} {'updates':>8s} {'median s':>9s} {'worst s':>8s} {'cpu med':>8s} "
          f"{'cpu worst':>9s} {'peak MB':>8s} {'x PNG':>6s} {'x compute':>10s} {'worst/budget':>13s}")
    for name, (make_s, steps) in cycles.items():
        undo = [(c, c.value) for c, _ in steps]
        times = []
        for _ in range(args.rounds):
            times += run(steps)
            run(undo[::-1])
        mb = peak_mb(lambda s=steps, u=undo: (run(s), run(u[::-1])))
        wall, cpu = [t[0] for t in times], [t[1] for t in times]
        med, worst = statistics.median(wall), max(wall)
        print(f"{name:18s} {make_s:7.2f} {len(times):8d} {med:9.3f} {worst:8.3f} {statistics.median(cpu):8.3f} "
              f"{max(cpu):9.3f} {mb:8.1f} {med / base_s:6.1f} {med / compute_s:10.3f} {worst / BUDGET:13.2f}")
    print(f"\nbudget: {BUDGET} s per update; worst/budget below 1 is within it. 'cpu' columns: CPU seconds of "
          "this process, which other load on the machine does not inflate.")
    # opening an account from the map (the explorer is made on the first pick, then reused)
    _, first = timed(lambda: pm.select(key[0]))
    _, second = timed(lambda: pm.select(key[1]))
    print(f"PortfolioMap.select: first pick (makes the explorer) {first:.3f} s, next pick {second:.3f} s")


if __name__ == "__main__":
    main()
