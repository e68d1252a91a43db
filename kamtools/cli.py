"""The ``kamtools`` command.

``kamtools sample`` writes the sample portfolio, ``kamtools validate`` checks a
data set and says what is wrong with it, ``kamtools report`` renders client-ready
account reports. Run ``kamtools COMMAND --help``.
"""

from __future__ import annotations

import json
import sys
import warnings

import click

from kamtools._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kamtools")
def main():
    """Measure Key Account Management: KPIs, scorecards, ROI, retention, reports."""


@main.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the tables into.")
@click.option("--accounts", "n_accounts", default=200, show_default=True, type=click.IntRange(min=10), help="Number of accounts.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed; the same seed gives the same data.")
@click.option("--start", default="2021-01-01", show_default=True, help="First day of the data.")
@click.option("--end", default="2025-12-31", show_default=True, help="Last day of the data.")
@click.option("--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "parquet"]))
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def sample(out, n_accounts, seed, start, end, fmt, force):
    """Generate the sample portfolio (with its known true effects) into OUT."""
    from pathlib import Path

    from kamtools import sample as sample_mod
    from kamtools.exceptions import KamtoolsError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = sample_mod.generate(n_accounts=n_accounts, start=start, end=end, seed=seed)
            data.to_folder(out, format=fmt, overwrite=force)
        sample_mod.save_truth(data.truth, Path(out) / "truth.json", overwrite=True)
    except KamtoolsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Wrote the sample portfolio (seed {seed}) to {out}/")
    click.echo(str(data.summary()))
    click.echo("")
    click.echo(_truth_text(data.truth))
    _echo_warnings(caught, err=False)


def _truth_text(truth) -> str:
    t = truth.to_dict()
    keep = ["uplift_margin_per_month", "uplift_pct", "churn_hr_key", "kam_cost_per_account_month", "programme_roi"]
    lines = ["True effects built into the data (data.truth):"]
    lines += [f"  {k:28s} {t[k]:,.4g}" for k in keep if isinstance(t.get(k), int | float)]
    return "\n".join(lines)


def _echo_warnings(caught, *, err: bool):
    from kamtools.exceptions import DataWarning

    notes = [w for w in caught if issubclass(w.category, DataWarning)]
    if notes:
        click.echo(f"\n{len(notes)} warning(s) (legal but worth a look):", err=err)
        for w in notes:
            click.echo(f"  - {w.message}", err=err)


@main.command()
@click.argument("source")
@click.option("--currency", default=None, help="ISO code of the currency, if the source does not say.")
@click.option("--date-format", default=None, help="strftime format of text dates, e.g. %d/%m/%Y. Default ISO 8601.")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of CSV files.")
@click.option(
    "--columns", "columns_json", default=None,
    help='JSON mapping of your headers onto ours, e.g. \'{"transactions": {"Net": "revenue"}}\', or a path to such a file.',
)
@click.option("--engine", type=click.Choice(["pandas", "duckdb"]), default=None,
              help="Keep Parquet/DuckDB transactions in DuckDB (duckdb) or read them into memory (pandas). "
                   "Default: DuckDB above 5 million lines.")
def validate(source, currency, date_format, encoding, columns_json, engine):
    """Check the data set SOURCE against the data model.

    SOURCE is a folder of CSV/Parquet/Excel files (the transactions may be a
    sub-folder of Parquet files), an .xlsx workbook, a DuckDB or SQLite file, or
    a database URL. Prints a summary and any warnings; on errors, prints every
    problem found and exits with status 1. A large transaction log is checked
    in DuckDB, without reading it into memory.
    """
    from kamtools import io
    from kamtools.exceptions import KamtoolsError, SchemaError

    columns = _json_arg(columns_json) if columns_json else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = io.load(source, columns=columns, currency=currency, date_format=date_format, encoding=encoding,
                           engine=engine)
    except SchemaError as err:
        click.echo(f"{source}: INVALID\n", err=True)
        click.echo(str(err), err=True)
        sys.exit(1)
    except KamtoolsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{source}: valid")
    click.echo(f"fingerprint   {data.fingerprint[:16]}")
    if data.lazy:
        click.echo(f"engine        duckdb ({', '.join(t.label for t in data.lazy.values())} stays in DuckDB)")
    click.echo(str(data.summary()))
    _echo_warnings(caught, err=False)


@main.command()
@click.argument("accounts", nargs=-1)
@click.option("--all-key-accounts", is_flag=True, help="Report on every key account of the data.")
@click.option("--portfolio", is_flag=True, help="Also render the portfolio report (portfolio.html).")
@click.option("--data", "source", required=True,
              help='Data source: a folder of CSV/Parquet/Excel files, a workbook, a database file or URL, or "sample".')
@click.option("--period-end", required=True, help="Last day of the reporting period, YYYY-MM-DD.")
@click.option("--period", "period", default="Q", show_default=True, help="Period length: M, Q or Y.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder for the reports.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes of this machine (default: all cores); not with --executor dask.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
              help="Where reports render: local (worker processes here; the default) or dask (the workers of the "
                   "Dask cluster at --scheduler; needs pip install \"kamtools[dask]\" here and on the workers).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --executor dask: the Dask scheduler's address, e.g. tcp://10.0.0.5:8786. The data is read "
                   "here only and the files are written here; the workers need no shared file system.")
@click.option("--format", "formats", default="html", show_default=True,
              help="Comma-separated: html, ipynb, pdf (pdf needs Playwright and Chromium).")
@click.option("--force", is_flag=True, help="Render reports that are up to date too.")
@click.option("--currency", default=None, help="ISO code of the currency, if the source does not say.")
@click.option("--targets", default=None, type=click.Path(dir_okay=False), help="Scorecard targets CSV (kpi,target,...).")
@click.option("--locale", "number_locale", default="en", show_default=True, help="Number style: en, de, fr, ...")
@click.option("--template", default=None, type=click.Path(dir_okay=False), help="Account report notebook to use.")
@click.option("-p", "--parameter", "extra", multiple=True, metavar="NAME=VALUE",
              help="A further template parameter (repeatable), checked against the template.")
def report(accounts, all_key_accounts, portfolio, source, period_end, period, out, jobs, executor, scheduler, formats,
           force, currency, targets, number_locale, template, extra):
    """Render client-ready reports: one HTML file per ACCOUNT (no code), a manifest and an index.

    Reports render in parallel, each in its own kernel and working directory,
    on this machine or on a Dask cluster (--executor dask --scheduler ADDRESS);
    reports whose inputs are unchanged are skipped (use --force). A report that
    fails does not stop the others; the command then exits with status 1.
    """
    from kamtools import report as report_mod
    from kamtools.exceptions import KamtoolsError, SchemaError

    try:
        params = report_mod.parse_parameters(extra, template=template) if extra else None
        batch = report_mod.run(
            source, list(accounts), period_end=period_end, out=out, all_key_accounts=all_key_accounts,
            portfolio=portfolio, period=period, currency=currency, targets=targets, number_locale=number_locale,
            formats=formats, jobs=jobs, force=force, parameters=params, template=template, executor=executor,
            scheduler=scheduler,
        )
    except SchemaError as err:
        click.echo(f"{source}: INVALID\n", err=True)
        click.echo(str(err), err=True)
        sys.exit(1)
    except KamtoolsError as err:
        raise click.ClickException(str(err)) from err
    counts = batch.reports["status"].value_counts()
    click.echo(
        f"{counts.get('ok', 0)} rendered, {counts.get('skipped', 0)} up to date, {counts.get('failed', 0)} failed."
    )
    for row in batch.reports[batch.reports["status"] == "failed"].itertuples():
        click.echo(f"  FAILED {row.report}: {row.error}", err=True)
    click.echo(f"Index: {batch.index.resolve()}")
    if batch.failed:
        sys.exit(1)


def _json_arg(value: str):
    from pathlib import Path

    text = Path(value).read_text() if not value.lstrip().startswith("{") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"not valid JSON: {err}", param_hint="--columns") from err


if __name__ == "__main__":  # pragma: no cover
    main()
