"""KPIs on a transaction log larger than memory: the DuckDB engine against the pandas path.

Writes a Parquet lake with the sample generator's logic (``kt.sample.generate``
with many lines per order, account ids made unique per chunk), partitioned by
year: ``lake/accounts.parquet`` and ``lake/transactions/year=YYYY/*.parquet``.
The first chunks, about a tenth of the rows, also form a smaller lake. Then, each
in a fresh process so that its peak memory (VmHWM: everything the process
held, DuckDB's own memory included) is its own, it times ``kt.load`` and
``kt.compute`` of every transaction-based KPI by account and quarter:

- baseline: the pandas path on the small lake (the invoice lines in memory);
- the DuckDB engine on the small lake (the same rows): the ratio to the baseline;
- the DuckDB engine on the whole lake (100 million rows by default).

The lake is kept between runs (``--lake``; delete it to regenerate). Not a test:
run it by hand, ``.venv/bin/python benchmarks/bench_lake.py [--rows N]``. 100
million rows take about 20 minutes to generate and 7 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

LINES = 40  # invoice lines per order: about 4,500 lines per account over five years
CHUNK_ACCOUNTS = 1_100  # about 5 million lines a chunk


def transaction_kpis() -> list[str]:
    """The KPIs computed from the transactions alone (with the accounts table)."""
    import kamtools as kt

    cat = kt.kpis()
    return [k for k, tables in cat["tables"].items() if tuple(tables) == ("transactions",)]


def write_lake(root: Path, rows: int, seed: int) -> dict:
    """Generate chunks of accounts until the lake holds ``rows`` lines; return its description."""
    import pandas as pd

    import kamtools as kt

    done = root / "lake.json"
    if done.exists():
        meta = json.loads(done.read_text())
        if meta["rows"] >= rows:
            return meta
    small = root.parent / (root.name + "-small")
    for folder in (root, small):
        (folder / "transactions").mkdir(parents=True, exist_ok=True)
    accounts, total, chunk, small_rows = [], 0, 0, 0
    t0 = time.perf_counter()
    while total < rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = kt.sample.generate(CHUNK_ACCOUNTS, seed=seed + chunk, lines=LINES)
        prefix = f"C{chunk:03d}-"
        acc = data.accounts.drop(columns=["manager_id"]).assign(account_id=prefix + data.accounts["account_id"])
        tx = data.transactions.assign(account_id=prefix + data.transactions["account_id"])
        accounts.append(acc)
        in_small = chunk < max(1, round(rows / 10 / (CHUNK_ACCOUNTS * LINES * 113)))  # ~5M lines a chunk
        for year, part in tx.groupby(tx["date"].dt.year):
            for folder in (root, small) if in_small else (root,):
                out = folder / "transactions" / f"year={year}"
                out.mkdir(exist_ok=True)
                part.to_parquet(out / f"chunk-{chunk:03d}.parquet", index=False, row_group_size=1_000_000)
        total += len(tx)
        small_rows += len(tx) if in_small else 0
        if in_small:
            pd.concat(accounts).to_parquet(small / "accounts.parquet", index=False)
        chunk += 1
        print(f"  chunk {chunk}: {total:,} lines ({time.perf_counter() - t0:.0f} s)", flush=True)
        del data, tx
    pd.concat(accounts).to_parquet(root / "accounts.parquet", index=False)
    meta = {"rows": total, "small_rows": small_rows, "accounts": CHUNK_ACCOUNTS * chunk,
            "small_accounts": len(pd.read_parquet(small / "accounts.parquet")), "seconds": time.perf_counter() - t0}
    for folder in (root, small):
        (folder / "kamtools.json").write_text(json.dumps({"currency": "EUR"}))
    done.write_text(json.dumps(meta))
    return meta


def peak_gb() -> float:
    """Peak resident memory of this process: VmHWM (ru_maxrss would carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(lake: str, engine: str) -> None:
    """One measurement, in its own process: print seconds and peak memory as JSON."""
    import kamtools as kt

    warnings.simplefilter("ignore")
    kt.lazy.PROGRESS = False  # stdout carries the figures
    kpis = transaction_kpis()
    t0 = time.perf_counter()
    data = kt.load(lake, engine=engine)
    t1 = time.perf_counter()
    values = kt.compute(data, kpis, by="account", period="Q")
    t2 = time.perf_counter()
    peak = peak_gb()
    print(json.dumps({"load": t1 - t0, "compute": t2 - t1, "peak_gb": peak, "kpis": len(kpis),
                      "result_rows": len(values), "values": int(values["value"].notna().sum())}))


def measure(lake: Path, engine: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(lake), engine], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"{engine} on {lake} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--lake", type=Path, default=Path("build/lake"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    print(f"lake {args.lake}: {args.rows:,} invoice lines wanted")
    meta = write_lake(args.lake, args.rows, args.seed)
    small = args.lake.parent / (args.lake.name + "-small")
    size = sum(f.stat().st_size for f in args.lake.rglob("*.parquet")) / 2**30
    print(f"  {meta['rows']:,} lines of {meta['accounts']:,} accounts ({size:.1f} GB Parquet); small lake "
          f"{meta['small_rows']:,} lines of {meta['small_accounts']:,} accounts")
    print(f"  {len(transaction_kpis())} transaction-based KPIs, by account and quarter; {os.cpu_count()} cores\n")

    base = measure(small, "pandas")
    lazy_small = measure(small, "duckdb")
    lazy = measure(args.lake, "duckdb")
    rows = [(f"pandas, {meta['small_rows'] / 1e6:.0f}M lines (baseline)", base),
            (f"duckdb, {meta['small_rows'] / 1e6:.0f}M lines", lazy_small),
            (f"duckdb, {meta['rows'] / 1e6:.0f}M lines", lazy)]
    print(f"{'what':32s} {'load s':>8s} {'compute s':>10s} {'total s':>8s} {'peak GB':>8s} {'x time':>7s} "
          f"{'x memory':>9s}")
    for label, r in rows:
        total = r["load"] + r["compute"]
        print(f"{label:32s} {r['load']:8.1f} {r['compute']:10.1f} {total:8.1f} {r['peak_gb']:8.2f} "
              f"{total / (base['load'] + base['compute']):7.2f} {r['peak_gb'] / base['peak_gb']:9.2f}")
    per = (lazy["load"] + lazy["compute"]) / (lazy_small["load"] + lazy_small["compute"])
    print(f"\nduckdb: {meta['rows'] / meta['small_rows']:.1f}x the lines took {per:.1f}x the time; "
          f"peak memory at {meta['rows'] / 1e6:.0f}M lines {lazy['peak_gb']:.2f} GB (goal: under 4 GB) "
          f"{'PASS' if lazy['peak_gb'] < 4 else 'FAIL'}")
    if not math.isclose(base["values"], lazy_small["values"]):
        print(f"WARNING: the engines gave {base['values']:,} and {lazy_small['values']:,} values")


if __name__ == "__main__":
    main()
