"""How much faster is ``kt.report.run`` than the consultant's shell loop?

Renders the account report of N sample accounts (default 20 key accounts) two
ways, in the same run:

- baseline, what a consultant does by hand: a shell loop that runs, per account,
  ``papermill templates/account_report.ipynb OUT.ipynb -p ...`` and then
  ``jupyter nbconvert --to html --no-input OUT.ipynb`` (two command-line
  programs per report; the notebook loads and validates the CSV files and
  computes the KPIs of the whole portfolio itself);
- ``kt.report.run`` (data loaded and validated once, inputs prepared once,
  parallel worker processes, papermill and nbconvert in-process), and the same
  through the ``kamtools report`` command.

It also times a bare papermill run of an empty notebook (command line and
in-process), so the seconds per report can be read as overhead plus work.
With ``--dask`` it adds ``kt.report.run(executor="dask")`` on a local Dask
cluster of as many single-threaded worker processes as ``--jobs``, and the
fixed cost of connecting to it (scheduler handshake, worker check), with the
ratio to (b) measured in the same run.
Prints seconds, seconds per report, the ratios and the peak memory of the
largest process. Not a test: run it by hand,
``.venv/bin/python benchmarks/bench_report.py [--accounts 20] [--jobs N] [--dask]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "data" / "sample"
TEMPLATE = ROOT / "templates" / "account_report.ipynb"
END = "2025-12-31"


def sh(*args, cwd=None):
    subprocess.run([str(a) for a in args], check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def empty_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nbformat.write(nb, path)
    return path


def baseline(ids, out: Path):
    """The shell loop: papermill CLI, then nbconvert CLI, one account after the other."""
    out.mkdir()
    for a in ids:
        nb = out / f"{a}.ipynb"
        sh(BIN / "papermill", TEMPLATE, nb, "-p", "data", SAMPLE, "-p", "account_id", a, "-p", "period_end", END,
           "--log-level", "ERROR", cwd=ROOT)
        sh(BIN / "jupyter", "nbconvert", "--to", "html", "--no-input", nb, "--log-level", "ERROR", cwd=ROOT)
    return sorted(out.glob("*.html"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20, help="number of key accounts to render")
    parser.add_argument("--jobs", type=int, default=None, help="workers of kt.report.run (default: all cores)")
    parser.add_argument("--dask", action="store_true", help="also render on a local Dask cluster of --jobs workers")
    args = parser.parse_args()

    import kamtools as kt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = kt.load(SAMPLE)
    keys = data.accounts.loc[data.accounts["is_key_account"], "account_id"].tolist()[: args.accounts]
    n = len(keys)
    cores = os.cpu_count()
    jobs = args.jobs or cores
    print(f"{n} sample key accounts, {cores} cores, kt.report.run with {jobs} workers; load average "
          f"{os.getloadavg()[0]:.1f} at the start")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        empty = empty_notebook(tmp / "empty.ipynb")

        # bare papermill: the least a report can cost
        _, bare_cli = timed(lambda: sh(BIN / "papermill", empty, tmp / "empty-out.ipynb", "--log-level", "ERROR"))
        import papermill as pm

        pm.execute_notebook(str(empty), None, progress_bar=False)  # warm up imports
        _, bare_inproc = timed(lambda: pm.execute_notebook(str(empty), None, progress_bar=False))
        _, nbconvert_cli = timed(lambda: sh(BIN / "jupyter", "nbconvert", "--to", "html", "--no-input",
                                            tmp / "empty-out.ipynb", "--log-level", "ERROR"))

        # (a) the consultant's loop
        files_a, sec_a = timed(lambda: baseline(keys, tmp / "baseline"))

        # (b) kt.report.run, in this process
        batch, sec_b = timed(lambda: kt.report.run(SAMPLE, keys, period_end=END, out=tmp / "run", jobs=jobs,
                                                   force=True, progress=False))
        # (c) the same through the command line
        _, sec_c = timed(lambda: sh(BIN / "kamtools", "report", *keys, "--data", SAMPLE, "--period-end", END,
                                    "--out", tmp / "cli", "-j", jobs, "--force"))
        files_c = sorted((tmp / "cli").glob("A*.html"))
        # (d) the same on a local Dask cluster: worker processes reached through the scheduler's address
        dask = dask_rows(keys, tmp / "dask", jobs) if args.dask else None

    assert len(files_a) == n, f"baseline wrote {len(files_a)} reports"
    assert (batch.reports["status"] == "ok").sum() == n, batch.reports[["report", "status", "error"]]
    assert len(files_c) == n

    worker_mean = batch.reports["seconds"].mean()
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print()
    print(f"bare papermill, empty notebook, command line   {bare_cli:7.2f} s")
    print(f"bare papermill, empty notebook, in-process     {bare_inproc:7.2f} s")
    print(f"bare jupyter nbconvert --no-input, command line {nbconvert_cli:6.2f} s")
    print()
    print(f"{'':44s}{'total s':>9s}{'s/report':>10s}{'overhead':>10s}")
    rows = [
        ("(a) shell loop: papermill + nbconvert CLIs", sec_a),
        (f"(b) kt.report.run, {jobs} workers", sec_b),
        (f"(c) kamtools report -j {jobs}", sec_c),
    ]
    if dask:
        rows.append((f"(d) kt.report.run, Dask cluster of {jobs} workers", dask["seconds"]))
    for label, sec in rows:
        per = sec / n
        print(f"{label:44s}{sec:9.1f}{per:10.2f}{per - bare_cli:+10.2f}")
    if dask:
        print(f"Dask: connecting and checking the workers {dask['connect']:.2f} s (fixed, once per run); "
              f"one report inside a Dask worker {dask['worker_mean']:.2f} s on average; ratio (d) / (b): "
              f"{dask['seconds'] / sec_b:.2f}x; the first {dask['workers']} reports on fresh workers took "
              f"{dask['cold']:.1f} s (imports)")
    print()
    print(f"one report inside a worker (kernel start, notebook, HTML): {worker_mean:.2f} s on average; "
          f"{worker_mean - bare_inproc:+.2f} s over an empty in-process papermill run")
    print(f"ratio (a) / (b): {sec_a / sec_b:.1f}x   (a) / (c): {sec_a / sec_c:.1f}x   (goal: at least 4x on 2 cores)")
    print(f"peak memory: largest child process {peak_children:,.0f} MiB, this process {peak_self:,.0f} MiB")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def dask_rows(keys, out: Path, workers: int) -> dict:
    """Seconds of a Dask run of ``keys`` on a fresh local cluster, and of connecting to it alone."""
    import kamtools as kt
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        # fresh workers import kamtools, papermill and nbconvert with their first report: timed apart
        _, cold = timed(lambda: kt.report.run(SAMPLE, keys[:workers], period_end=END, out=out / "warm",
                                              executor="dask", scheduler=cluster.scheduler_address, progress=False))
        _, connect = timed(lambda: kt.report._DaskCluster(cluster.scheduler_address).close())
        batch, seconds = timed(lambda: kt.report.run(SAMPLE, keys, period_end=END, out=out / "run", executor="dask",
                                                     scheduler=cluster.scheduler_address, force=True,
                                                     progress=False))
    assert (batch.reports["status"] == "ok").sum() == len(keys), batch.reports[["report", "status", "error"]]
    return {"seconds": seconds, "connect": connect, "worker_mean": batch.reports["seconds"].mean(), "cold": cold,
            "workers": workers}


if __name__ == "__main__":
    main()
