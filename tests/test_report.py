"""Account reports: text and numbers, parameters, the runner end to end, confidentiality, escaping, atomicity.

Rendering is the slow part (a kernel per report), so one batch of the sample is
rendered once for the module (``sample_batch``) and most end-to-end tests read it.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

import kamtools as kt
from kamtools import report as kr
from kamtools.cli import main
from kamtools.exceptions import ParameterError

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "data" / "sample"
END = "2025-12-31"
# a key account, a churned key account (no score in 2025Q4) and a non-key account named O'Brien & Sons
ACCOUNTS = ["A0001", "A0003", "A0139"]


def quiet_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kt.sample.load()


@pytest.fixture(scope="module")
def sample():
    return quiet_sample()


@pytest.fixture(scope="module")
def sample_batch(tmp_path_factory):
    """The sample's reports for ACCOUNTS, a bad id and the portfolio, rendered once with two workers."""
    out = tmp_path_factory.mktemp("reports")
    batch = kr.run(SAMPLE, [*ACCOUNTS, "NOPE"], period_end=END, out=out, portfolio=True, formats="html,ipynb",
                   jobs=2, progress=False)
    return batch


def page(batch, report, fmt="html") -> str:
    row = batch.reports.set_index("report").loc[report]
    return Path(row[fmt]).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- numbers and words


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: kr.format_number(1234567.891, decimals=2), "1,234,567.89"),  # en: comma thousands, point decimals
        (lambda: kr.format_number(1234567.891, decimals=2, locale="de"), "1.234.567,89"),
        (lambda: kr.format_number(1234567.891, decimals=2, locale="fr_FR"), "1\u202f234\u202f567,89"),
        (lambda: kr.format_number(-0.4), "0"),  # rounds to zero: no minus sign
        (lambda: kr.format_number(2.5, decimals=1, signed=True), "+2.5"),
        (lambda: kr.format_money(565826.21, "EUR"), "EUR 565,826"),
        (lambda: kr.format_money(565826.21, "EUR", locale="de"), "565.826 EUR"),
        (lambda: kr.format_money(-1500, "GBP", signed=True), "GBP -1,500"),
        (lambda: kr.format_percent(0.4034), "40.3%"),
        (lambda: kr.format_percent(0.4034, locale="de"), "40,3\u00a0%"),
        (lambda: kr.format_value(0.0302, "share"), "3.0%"),
        (lambda: kr.format_value(0.0213, "index"), "0.021"),
        (lambda: kr.format_value(15.0, "index"), "15"),
        (lambda: kr.format_value(3.1, "score 1-5"), "3.10"),
        (lambda: kr.format_value(float("nan"), "share"), "–"),
    ],
    ids=["en", "de", "fr", "zero", "signed", "money-en", "money-de", "money-neg", "pct-en", "pct-de", "share",
         "hhi", "risk", "score", "missing"],
)
def test_numbers_are_written_as_the_locale_writes_them(call, expected):
    assert call() == expected


def test_unknown_locale_is_an_error_naming_the_known_ones():
    with pytest.raises(ParameterError, match=r"number_locale='xx'.*use one of en, de, fr"):
        kr.format_number(1, locale="xx")


FULL = {
    "name": "Acme", "segment": "Retail", "revenue_ttm": 2_301_836.61, "revenue_ttm_growth": 0.1204,
    "segment_revenue_ttm_growth": 0.0412, "gross_margin_pct": 0.4034, "segment_gross_margin_pct": 0.3726,
    "score": 78.4, "rag": "amber", "score_change": -12.3, "previous_period": "2025Q3",
    "best_pillar": ("retention", 100.0), "worst_pillar": ("relationships", 50.0),
    "defection_risk": 60.0, "signals": ["No executive meeting in this and the previous period"],
    "revenue_at_risk": 2_301_836.61, "clv": 4_195_339.65, "segment_clv": 763_155.34,
    "uplift_pct": 0.362, "roi": 9.05, "focus": ["Executive sponsorship", "Skill assessment score"],
}


def test_executive_summary_writes_five_sentences_from_the_numbers():
    # every number below is FULL's, rounded by hand: 12.04% -> 12.0%, 78.4 -> 78, -12.3 -> down 12, 905% ROI
    assert kr.executive_summary(FULL, currency="EUR") == [
        ("Acme bought EUR 2,301,837 in the last twelve months, 12.0% more than in the twelve months before, against "
         "a median of 4.1% for Retail accounts; gross margin was 40.3% of revenue (median 37.3%)."),
        ("The 3R+1 scorecard stands at 78 of 100 (amber), down 12 points on 2025Q3; retention is the strongest "
         "pillar (100) and relationships the weakest (50)."),
        ("Retention needs attention: the defection-risk score is 60 of 100 (no executive meeting in this and the "
         "previous period), which puts EUR 2,301,837 of yearly revenue at risk."),
        ("Its simple lifetime value is EUR 4,195,340 (median EUR 763,155); since joining the KAM programme its gross "
         "margin runs 36.2% above what comparable accounts suggest, a return of 905% on the programme's cost."),
        "Focus next on Executive sponsorship and Skill assessment score.",
    ]


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({"name": "Bolt", "revenue_ttm": 1000.0, "revenue_ttm_growth": -0.25},
         ["Bolt bought EUR 1,000 in the last twelve months, 25.0% less than in the twelve months before."]),
        ({"name": "Bolt", "revenue_ttm": 1000.0, "revenue_ttm_growth": float("nan")},
         ["Bolt bought EUR 1,000 in the last twelve months."]),
        ({"defection_risk": 20.0, "signals": ["Revenue below the previous period's"]},
         [("The defection-risk score is 20 of 100 (revenue below the previous period's), below the 50 at which "
          "revenue counts as at risk.")]),
        ({"churn_probability": 0.0238, "segment_churn_probability": 0.06, "revenue_at_risk": 55158.2,
          "defection_risk": 15.0, "signals": ["A high or critical ticket is still open"]},
         [("The churn-risk model puts the probability of losing the account within a year at 2.4% (median 6.0%), "
           "EUR 55,158 of yearly revenue at risk; its defection-risk score is 15 of 100 (a high or critical ticket "
           "is still open).")]),
        ({"score": 91.0, "rag": "green", "score_change": 0.2, "focus": []},
         ["The 3R+1 scorecard stands at 91 of 100 (green), unchanged on the previous period.",
          "Every scorecard KPI is on target."]),
        ({"name": "Kestrel", "last_purchase": pd.Timestamp("2023-03-14"), "revenue_ttm": 0.0},
         ["Kestrel has bought nothing in the last twelve months; its last purchase was on 14 March 2023."]),
        ({"score": 60.0, "score_change": 1.2, "focus": ["a", "b", "c", "d", "e"]},
         ["The 3R+1 scorecard stands at 60 of 100, up 1 point on the previous period.",
          "Focus next on a, b, c and 2 more KPIs below target."]),
        ({"uplift_pct": -0.05}, [("Since joining the KAM programme its gross margin runs 5.0% below what comparable "
                                 "accounts suggest.")]),
        ({}, []),
    ],
    ids=["falling", "no-growth", "medium-risk", "model-risk", "on-target", "lapsed", "long-focus", "negative-uplift",
         "nothing"],
)
def test_executive_summary_leaves_out_what_it_has_no_numbers_for(figures, expected):
    assert kr.executive_summary(figures, currency="EUR") == expected


def test_executive_summary_uses_the_locale():
    text = kr.executive_summary({"name": "Acme", "revenue_ttm": 1234567.0, "revenue_ttm_growth": 0.052},
                                currency="EUR", locale="de")
    assert text == [("Acme bought 1.234.567 EUR in the last twelve months, 5,2\u00a0% more than in the twelve months "
                    "before.")]


# --------------------------------------------------------------------------- parameters


def test_template_parameters_come_from_the_parameters_cell():
    p = kr.template_parameters()
    assert p.index.tolist() == ["data", "account_id", "period_end", "period_length", "currency", "targets",
                                "number_locale", "prepared"]
    assert p.loc["period_end", "default"] == "2025-12-31"
    assert set(p["type"]) == {"str"}
    assert kr.template_parameters(kr.PORTFOLIO_TEMPLATE).index.tolist() == [
        "data", "period_end", "period_length", "currency", "targets", "number_locale", "prepared"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"acount_id": "A1"}, (r"Unknown parameter 'acount_id' for account_report\.ipynb\. Did you mean 'account_id'\? "
                              r"Valid parameters: data, account_id, period_end")),
        ({"colour": "red"}, r"Unknown parameter 'colour'.*Valid parameters: data, account_id"),
        ({"period_length": 3},
         r"Parameter 'period_length' of account_report\.ipynb must be str \(default 'Q'\); got int 3"),
        ({"account_id": None}, r"Parameter 'account_id' .* must be str .*got NoneType None"),
    ],
    ids=["typo", "unknown", "int-for-str", "none-for-str"],
)
def test_bad_parameters_are_errors_naming_the_parameter_and_the_valid_ones(params, match):
    with pytest.raises(ParameterError, match=match):
        kr.check_parameters(params)


def typed_template(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("n: int = 3  # how many\nrate: float = 0.5\nflag: bool = False\nlabel = 'x'",
                                          metadata={"tags": ["parameters"]})]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("params", "ok"),
    [({"n": 4, "rate": 1, "flag": True, "label": "y"}, True),  # an int passes for a float
     ({"n": True}, False),  # a bool is not an int
     ({"rate": "0.5"}, False),
     ({"label": 5}, False)],  # untyped: the type of the default
    ids=["good", "bool-for-int", "str-for-float", "int-for-untyped-str"],
)
def test_types_come_from_annotations_or_defaults(tmp_path, params, ok):
    tpl = typed_template(tmp_path / "t.ipynb")
    if ok:
        assert kr.check_parameters(params, template=tpl) == params
    else:
        with pytest.raises(ParameterError, match="must be"):
            kr.check_parameters(params, template=tpl)


def test_command_line_parameters_are_typed_by_the_template(tmp_path):
    tpl = typed_template(tmp_path / "t.ipynb")
    assert kr.parse_parameters(["n=7", "rate=2.5", "flag=yes", "label=a=b"], template=tpl) == {
        "n": 7, "rate": 2.5, "flag": True, "label": "a=b"}
    with pytest.raises(ParameterError, match=r"Parameter 'n' must be int; got 'seven'"):
        kr.parse_parameters(["n=seven"], template=tpl)


@pytest.mark.parametrize(
    "value",
    ['K"1\'\n; import os; os.system("touch x") #', 'a\\"b', "\\", "line\r\nbreak\ttab", '"""', "é ü 名", "{0} %s"],
    ids=["quotes-newline-code", "escaped-quote", "backslash", "crlf-tab", "triple-quote", "unicode", "format"],
)
def test_papermill_writes_string_parameters_as_literals_not_code(value):
    # the runner relies on papermill's Python translator: the value must come back as the same string
    from papermill.translators import PythonTranslator

    literal = PythonTranslator.translate(value)
    assert ast.literal_eval(literal) == value


def test_run_checks_parameters_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match=r"Unknown parameter 'acount_id'.*Did you mean 'account_id'"):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path, parameters={"acount_id": "A0002"}, progress=False)
    with pytest.raises(ParameterError, match=r"formats=\['html', 'docx'\]: use one or more of html, ipynb, pdf"):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path, formats="html,docx", progress=False)
    with pytest.raises(ParameterError, match=r"period=.W. is not a period length"):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path, period="W", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_pdf_without_chromium_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(kr, "chromium_path", lambda: None)
    with pytest.raises(ParameterError, match=r"no Chromium was found.*apt-get install chromium"):
        kr._check_pdf()


def test_the_kernel_is_this_python_whatever_kernelspecs_exist(monkeypatch, tmp_path):
    # a user kernelspec named python3 pointing elsewhere must not matter
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": ["/usr/bin/false", "{connection_file}"],
                                                      "display_name": "elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    km = kr._kernel_manager_class()(kernel_name=kr.KERNEL_NAME)
    assert km.kernel_spec.argv[:3] == [sys.executable, "-m", "ipykernel_launcher"]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("account_id", "expected"),
    [("A0001", "A0001"), ("acme-1.2_x", "acme-1.2_x"), ("index", None), ("../etc/passwd", None),
     ('K"1\n; rm -rf /', None), ("", None)],
    ids=["plain", "dots", "reserved", "traversal", "quotes-newline", "empty"],
)
def test_file_names_are_safe_and_unique(account_id, expected):
    stem = kr._stem(account_id)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stem)
    if expected is not None:
        assert stem == expected
    else:  # a hash of the id keeps odd ids apart
        assert stem.endswith(__import__("hashlib").sha1(account_id.encode()).hexdigest()[:8])


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "A0001.html"
    target.write_bytes(b"old complete report")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kr._write_atomic(target, b"new report, half written")
    assert target.read_bytes() == b"old complete report"
    assert [p.name for p in tmp_path.iterdir()] == ["A0001.html"]
    with pytest.raises(KeyboardInterrupt):
        kr._write_atomic(tmp_path / "A0002.html", b"new")
    assert not (tmp_path / "A0002.html").exists()


def test_the_index_escapes_names_and_errors():
    entries = {"X": {"report": "X", "kind": "account", "account_id": "X<1>",
                     "account_name": "<script>alert(1)</script>",
                     "status": "failed", "seconds": 0.0, "outputs": {},
                     "error": {"message": "O'Brien & \"Sons\" <b>", "cell": {"index": 3}}}}
    text = kr._index_html(entries, {"period_end": END, "data_fingerprint": "ab"}).decode()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "O&#x27;Brien &amp; &quot;Sons&quot; &lt;b&gt;" in text
    assert "X&lt;1&gt;" in text


# --------------------------------------------------------------------------- prepared inputs: only the account's own


def test_prepared_inputs_hold_only_the_account_and_anonymous_aggregates(sample):
    import pickle

    inputs = kr.prepare(sample, ["A0001"], period_end=END)["A0001"]
    for name, df in inputs.data.tables.items():
        if "account_id" in df.columns:
            assert set(df["account_id"]) <= {"A0001"}, name
    assert set(inputs.values["entity"]) == {"A0001"}
    assert "entity" not in inputs.peers.columns
    assert (inputs.peers["n"] >= kr.MIN_PEERS).all()
    blob = pickle.dumps(inputs)
    others = [a for a in sample.accounts["account_id"] if a != "A0001"]
    assert [a for a in others if a.encode() in blob] == []


def test_peer_medians_are_the_segment_medians(sample):
    # Automotive accounts' median revenue in 2025Q4, computed here with pandas from kt.compute
    inputs = kr.prepare(sample, ["A0001"], period_end=END)["A0001"]
    v = kt.compute(sample, ["revenue"], period="Q", as_of=END)
    auto = sample.accounts.loc[sample.accounts["industry"] == "Automotive", "account_id"]
    q4 = v[(v["period"] == pd.Period("2025Q4", "Q")) & v["entity"].isin(auto)]["value"].dropna()
    row = inputs.peers[(inputs.peers["kpi"] == "revenue") & (inputs.peers["period"] == pd.Period("2025Q4", "Q"))]
    assert row["group"].item() == "Automotive"
    assert row["median"].item() == pytest.approx(q4.median())
    assert row["n"].item() == len(q4)


def test_programme_roi_of_the_simple_comparison_is_near_the_truth(sample):
    # truth (data/README.md): programme ROI 2.05, programme cost 1,870,110 EUR over all 40 key accounts.
    # The observed-vs-segment comparison covers the key accounts with 12 months of data before entry.
    rep = kr.portfolio_report(sample, period_end=END)
    m = rep.inputs.models["roi"]  # kamtools.roi's estimate, shown first: its interval covers the truth
    assert m["roi_ci"][0] < sample.truth.programme_roi < m["roi_ci"][1]
    assert m["cost"] == pytest.approx(sample.truth.programme_cost)
    assert "Programme ROI" in repr(rep.programme_roi()) and "Cross-check" in repr(rep.programme_roi())
    p = rep.programme()
    # 35 of the 40 key accounts: A0082 entered KAM within the data's first year, four had no margin the year before
    assert p["accounts"] == 35
    assert p["cost"] < sample.truth.programme_cost
    assert abs(p["roi"] - sample.truth.programme_roi) < 0.5
    u = rep.uplift_estimates().set_index("account_id")
    kam = sample.costs.query("account_id == 'A0001' and kind == 'kam_programme' and date >= '2024-05-01'")
    assert u.loc["A0001", "cost"] == pytest.approx(kam["amount"].sum())  # A0001 entered KAM on 1 May 2024


def test_kpis_missing_from_the_catalogue_or_the_data_show_as_not_available(small_sample, tmp_path):
    tables = {n: df for n, df in small_sample.tables.items() if n not in ("surveys", "tickets")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = kt.KamData(tables, currency="EUR")
    targets = tmp_path / "targets.csv"
    targets.write_text("kpi,target\nmade_up_kpi,1\nnps,30\ngross_margin_pct,0.35\n")
    rep = kr.account_report(data, "A0008", period_end=END, targets=str(targets))
    table = rep.scorecard_table()._repr_html_()
    assert "not available: not in the KPI catalogue" in table  # made_up_kpi
    assert "not available: not computable: needs table surveys" in table  # nps
    assert "Gross margin %" in table and "rag-" in table
    assert "not available: not computable: needs table" in rep.retention()._repr_html_()  # defection risk
    assert "not available" in repr(rep.kpi_trend("nps"))
    assert rep.figures.get("defection_risk") is None


def test_model_failures_fall_back_without_naming_other_accounts(sample, monkeypatch):
    def fails(*args, **kwargs):
        raise ParameterError("KAM entry before the data start for accounts A0002, A0004")

    monkeypatch.setattr(kt.roi, "programme_roi", fails)
    monkeypatch.setattr(kt.retention, "churn_risk", fails)
    rep = kr.account_report(sample, "A0001", period_end=END)
    footer = rep.footer()._repr_html_()
    assert "could not be estimated on these data; the simple comparison is shown" in footer
    assert "A0002" not in footer and "A0002" not in repr(rep.summary())
    assert "churn_probability" not in rep.figures  # the rule-based score instead
    assert "Cross-check" not in repr(rep.uplift_roi()) and "Margin per month before KAM" in repr(rep.uplift_roi())
    port = kr.portfolio_report(sample, period_end=END)  # the internal report keeps the error itself
    assert any("A0002" in n for n in port.notes)


def test_the_default_scorecard_is_a_sound_kpi_set():
    keys = pd.read_csv(kr.DEFAULT_TARGETS)["kpi"].tolist()
    assert len(keys) == 10 and set(keys) <= set(kt.kpis().index)
    assert kt.check_kpi_set(keys) == []  # at most 10 KPIs, every 3R+1 pillar, leading and lagging


def test_the_report_writes_numbers_in_the_chosen_locale(sample):
    rep = kr.account_report(sample, "A0001", period_end=END, locale="de")
    assert "565.826 EUR" in rep.key_figures()._repr_html_()  # A0001's 2025Q4 revenue, German style


# --------------------------------------------------------------------------- end to end on the sample


def test_the_batch_reports_each_account_and_isolates_the_bad_id(sample_batch):
    r = sample_batch.reports.set_index("report")
    assert r["status"].to_dict() == {"A0001": "ok", "A0003": "ok", "A0139": "ok", "NOPE": "failed",
                                     "portfolio": "ok"}
    assert "account id 'NOPE' is not in the data" in r.loc["NOPE", "error"]
    assert sample_batch.failed == 1


@pytest.mark.parametrize("account", ACCOUNTS)
def test_html_has_no_code_at_all(sample_batch, account):
    text = page(sample_batch, account)
    for code in ("<pre", "<script", "jp-InputArea", "In&nbsp;[", "import kamtools", "account_report(", "rep.",
                 "prepared ="):
        assert code not in text, code
    # figures are embedded, nothing is linked; A0001 has all six charts (A0003 stopped buying: fewer)
    assert text.count('src="data:image/png;base64,') == 6 if account == "A0001" else text.count("data:image/png") >= 1
    assert not re.search(r'src="(?!data:)', text)


def test_html_holds_the_figures_kt_compute_gives(sample_batch, sample):
    text = page(sample_batch, "A0001")
    v = kt.compute(sample, ["revenue", "gross_margin_pct", "annual_revenue_per_account"], period="Q", as_of=END)
    q4 = v[(v["entity"] == "A0001") & (v["period"] == pd.Period("2025Q4", "Q"))].set_index("kpi")["value"]
    assert kr.format_money(q4["revenue"], "EUR") == "EUR 565,826"  # the sample's A0001 revenue in 2025Q4
    for shown in (kr.format_money(q4["revenue"], "EUR"), kr.format_percent(q4["gross_margin_pct"]),
                  kr.format_money(q4["annual_revenue_per_account"], "EUR")):
        assert shown in text, shown
    assert "Westfield Power SA" in text and "2025Q4 (1 October to 31 December 2025)" in text
    assert "Sofia Kowalski" in text  # the account manager (managers.csv, M-id of A0001)


def test_the_report_of_an_account_that_stopped_buying_says_so(sample_batch, sample):
    text = page(sample_batch, "A0003")
    last = sample.transactions.loc[sample.transactions["account_id"] == "A0003", "date"].max()
    assert last < pd.Timestamp("2025-01-01")
    assert (f"Kestrel Glass Holdings has bought nothing in the last twelve months; its last purchase was on "
            f"{last.day} {last:%B %Y}.") in text
    assert "on target" not in text  # no score in the period: no claim about targets


def test_the_manifest_records_every_report(sample_batch, sample):
    doc = json.loads(sample_batch.manifest.read_text())
    assert doc["data_fingerprint"] == sample.fingerprint
    assert doc["summary"] == {"ok": 4, "skipped": 0, "failed": 1}
    by = {e["report"]: e for e in doc["reports"]}
    e = by["A0001"]
    assert e["parameters"] == {"data": str(SAMPLE.resolve()), "period_end": END, "period_length": "Q",
                               "currency": "", "targets": "", "number_locale": "en", "account_id": "A0001"}
    assert e["outputs"] == {"ipynb": "A0001.ipynb", "html": "A0001.html"}
    assert e["status"] == "ok" and e["seconds"] > 0 and e["error"] is None
    assert e["account_name"] == "Westfield Power SA" and e["data_fingerprint"] == sample.fingerprint
    assert by["NOPE"]["status"] == "failed" and by["NOPE"]["outputs"] == {}
    assert by["NOPE"]["error"]["type"] == "ParameterError"
    assert by["portfolio"]["outputs"]["html"] == "portfolio.html"
    for entry in doc["reports"]:
        for name in entry["outputs"].values():
            assert (sample_batch.out / name).is_file()


def test_the_index_links_every_report_with_its_status(sample_batch):
    text = sample_batch.index.read_text()
    for name in ("A0001.html", "A0003.html", "A0139.html", "portfolio.html"):
        assert f'href="{name}"' in text
    assert "O&#x27;Brien &amp; Sons" in text
    assert "failed" in text and "account id &#x27;NOPE&#x27; is not in the data" in text


def scrub(text: str) -> str:
    """Drop embedded images (base64 can spell anything) before scanning."""
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "", text)
    return re.sub(r'"image/png": "[A-Za-z0-9+/=\\n]+"', "", text)


def forms(s: str) -> set[str]:
    """A string as it may appear in HTML or JSON."""
    out = {s, html.escape(s, quote=False), html.escape(s, quote=True)}
    return out | {json.dumps(x, ensure_ascii=False)[1:-1] for x in list(out)} | {json.dumps(s)[1:-1]}


@pytest.mark.parametrize("account", ACCOUNTS)
@pytest.mark.parametrize("fmt", ["html", "ipynb"])
def test_no_other_account_leaks_into_a_report(sample_batch, sample, account, fmt):
    text = scrub(page(sample_batch, account, fmt))
    acc = sample.accounts
    own = acc.loc[acc["account_id"] == account, "account_name"].item()
    found = []
    for a, name in acc[["account_id", "account_name"]].itertuples(index=False):
        if a == account:
            continue
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(a)}(?![A-Za-z0-9])", text):
            found.append(a)
        if name not in own:  # a name inside the own name cannot be told apart
            found += [f"{a}: {f}" for f in forms(name) if f in text]
    assert found == []


def test_the_leak_scan_finds_a_leak(sample_batch, sample):
    # the scan itself must be able to fail: plant another account's escaped name and id
    text = scrub(page(sample_batch, "A0001") + "<td>O&#x27;Brien &amp; Sons</td> A0002")
    assert any(f in text for f in forms("O'Brien & Sons"))
    assert re.search(r"(?<![A-Za-z0-9])A0002(?![A-Za-z0-9])", text)


def test_the_portfolio_report_covers_the_key_accounts(sample_batch, sample):
    text = page(sample_batch, "portfolio")
    keys = sample.accounts.loc[sample.accounts["is_key_account"], "account_id"]
    assert all(a in text for a in keys)
    for heading in ("Scorecard overview", "Concentration and dependency risk", "Programme ROI",
                    "Retention: key accounts against the others"):
        assert heading in text
    assert "<pre" not in text and "import kamtools" not in text


# --------------------------------------------------------------------------- up to date, force, command line


@pytest.fixture
def rendered(sample_batch, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(sample_batch.out, out)
    return out


def test_up_to_date_reports_are_skipped_and_force_renders_them(rendered):
    before = {p.name: p.stat().st_mtime_ns for p in rendered.glob("*.html")}
    again = kr.run(SAMPLE, ACCOUNTS, period_end=END, out=rendered, portfolio=True, formats="html,ipynb", jobs=1,
                   progress=False)
    assert again.reports["status"].tolist() == ["skipped"] * 4
    after = {p.name: p.stat().st_mtime_ns for p in rendered.glob("*.html")}
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"}
    forced = kr.run(SAMPLE, ["A0001"], period_end=END, out=rendered, formats="html", jobs=1, force=True,
                    progress=False)
    assert forced.reports["status"].tolist() == ["ok"]
    assert (rendered / "A0001.html").stat().st_mtime_ns > before["A0001.html"]
    doc = json.loads((rendered / "manifest.json").read_text())
    assert {e["report"] for e in doc["reports"]} == {*ACCOUNTS, "NOPE", "portfolio"}  # earlier entries are kept


def test_a_changed_parameter_or_format_is_not_up_to_date(tmp_path):
    tpl = small_template(tmp_path / "tpl.ipynb")
    out = tmp_path / "out"

    def status(**kw):
        b = kr.run(SAMPLE, ["A0001"], period_end=END, out=out, template=tpl, jobs=1, progress=False, **kw)
        return b.reports["status"].item()

    assert [status(), status(), status(number_locale="de"), status(number_locale="de"),
            status(number_locale="de", formats="html,ipynb")] == ["ok", "skipped", "ok", "skipped", "ok"]


def test_the_command_renders_skips_and_exits_1_on_a_failure(rendered):
    result = CliRunner().invoke(main, ["report", "A0001", "A0139", "NOPE", "--data", str(SAMPLE), "--period-end", END,
                                       "--out", str(rendered), "--format", "html,ipynb", "-j", "1"])
    assert result.exit_code == 1, result.output
    assert "0 rendered, 2 up to date, 1 failed." in result.output
    assert "FAILED NOPE: account id 'NOPE' is not in the data" in result.output
    assert f"Index: {(rendered / 'index.html').resolve()}" in result.output


def test_the_command_rejects_unknown_parameters(tmp_path):
    result = CliRunner().invoke(main, ["report", "A0001", "--data", str(SAMPLE), "--period-end", END, "--out",
                                       str(tmp_path), "-p", "acount_id=A0002"])
    assert result.exit_code == 1
    assert "Unknown parameter 'acount_id' for account_report.ipynb. Did you mean 'account_id'?" in result.output


# --------------------------------------------------------------------------- failures, progress, interruption


def small_template(path: Path) -> Path:
    """A light template with the runner's parameters: prints the kernel's Python, fails for A0002."""
    params = "\n".join(f'{name}: str = ""' for name in kr.template_parameters().index)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import sys\nprint('kernel python:', sys.executable)"),
        nbformat.v4.new_code_cell('if account_id == "A0002":\n    raise ValueError("boom for " + account_id)'),
        nbformat.v4.new_markdown_cell("## Done"),
    ]
    nbformat.write(nb, path)
    return path


def test_a_failing_cell_is_recorded_and_the_others_go_on(tmp_path, capsys):
    tpl = small_template(tmp_path / "tpl.ipynb")
    batch = kr.run(SAMPLE, ["A0001", "A0002", "A0004"], period_end=END, out=tmp_path / "out", template=tpl,
                   formats="html,ipynb", jobs=1)
    r = batch.reports.set_index("report")
    assert r["status"].to_dict() == {"A0001": "ok", "A0002": "failed", "A0004": "ok"}
    err = {e["report"]: e for e in json.loads(batch.manifest.read_text())["reports"]}["A0002"]["error"]
    assert err["type"] == "ValueError" and err["message"] == "boom for A0002"
    assert err["cell"]["index"] == 3  # 0 parameters, 1 injected parameters, 2 print, 3 the raise
    assert err["cell"]["source"].startswith('if account_id == "A0002":')
    assert not (tmp_path / "out" / "A0002.html").exists()
    nb = nbformat.read(tmp_path / "out" / "A0001.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"kernel python: {sys.executable}" in printed
    # without a terminal, progress is one plain line per report
    lines = capsys.readouterr().err
    assert "\r" not in lines
    assert re.search(r"\[\d/3\] A0002 failed \(\d+\.\d s\): boom for A0002", lines)


def test_a_report_interrupted_mid_write_leaves_no_file_at_its_final_path(tmp_path, monkeypatch):
    tpl = small_template(tmp_path / "tpl.ipynb")
    out = tmp_path / "out"
    calls = []

    def fsync(fd):  # the first write of the run is the report's HTML: interrupt it there
        calls.append(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=out, template=tpl, jobs=1, progress=False)
    assert calls
    assert list(out.iterdir()) == []  # no report, no temporary, no manifest


def _can_print_pdf() -> bool:
    import importlib.util

    return kr.chromium_path() is not None and importlib.util.find_spec("playwright") is not None


@pytest.mark.skipif(not _can_print_pdf(), reason="PDF needs Playwright and a system Chromium")
def test_pdf_is_printed_with_the_system_chromium(tmp_path):
    tpl = small_template(tmp_path / "tpl.ipynb")
    batch = kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path / "out", template=tpl, formats="html,pdf",
                   jobs=1, progress=False)
    assert batch.reports["status"].tolist() == ["ok"], batch.reports["error"].tolist()
    assert Path(batch.reports["pdf"].item()).read_bytes()[:5] == b"%PDF-"


# --------------------------------------------------------------------------- escaping and code injection


NASTY_ID = 'K"1\'\n; import pathlib; pathlib.Path(r"{flag}").touch() #'
SCRIPT = "<script>alert(1)</script>"
OBRIEN = "O'Brien & \"Sons\""
MANAGER = 'Dr. "Nick" <b>O\'Neil</b> & Co'


@pytest.fixture(scope="module")
def nasty_batch(small_sample, tmp_path_factory):
    """One account whose id is Python code, whose name is HTML, whose industry and manager have quotes and &."""
    tmp = tmp_path_factory.mktemp("nasty")
    flag = tmp / "injected"
    nasty = NASTY_ID.format(flag=flag)
    tables = {name: df.copy() for name, df in small_sample.tables.items()}
    acc = tables["accounts"]
    row = acc["account_id"] == "A0008"  # a key account of the small sample
    acc.loc[row, "account_name"] = SCRIPT
    acc.loc[row, "industry"] = OBRIEN
    mgr = tables["managers"]
    mgr.loc[mgr["manager_id"] == acc.loc[row, "manager_id"].item(), "name"] = MANAGER
    for df in tables.values():
        for col in ("account_id", "subject_id"):
            if col in df.columns:
                df[col] = df[col].where(df[col] != "A0008", nasty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = kt.KamData(tables, currency="EUR")
    batch = kr.run(data, [nasty], period_end="2025-12-31", out=tmp / "out", jobs=1, formats="html,ipynb",
                   progress=False)
    return batch, nasty, flag


def test_names_and_text_fields_are_escaped_in_the_html(nasty_batch):
    batch, nasty, _ = nasty_batch
    assert batch.reports["status"].tolist() == ["ok"], batch.reports["error"].tolist()
    text = page(batch, nasty)
    assert SCRIPT not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    title = re.search(r"<title>(.*?)</title>", text, re.DOTALL).group(1)
    assert title.startswith("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert OBRIEN not in text  # a raw ampersand would be markup
    assert html.escape(OBRIEN, quote=False) in text  # as text: & and < > escaped, quotes harmless
    assert html.escape(MANAGER, quote=False) in text
    index = batch.index.read_text()
    assert SCRIPT not in index and "&lt;script&gt;alert(1)&lt;/script&gt;" in index


def test_an_account_id_that_is_code_stays_a_string(nasty_batch):
    batch, nasty, flag = nasty_batch
    assert not flag.exists()  # the code in the id never ran
    row = batch.reports.set_index("report").loc[nasty]
    text = Path(row["html"]).read_text()
    assert html.escape(nasty, quote=False) in text  # shown as text in the header
    assert Path(row["html"]).parent == batch.out and "\n" not in Path(row["html"]).name
    nb = nbformat.read(row["ipynb"], as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    tree = ast.parse(injected.source)
    values = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body}
    assert values["account_id"] == nasty


@pytest.mark.parametrize(("dying", "status"), [("A0004", "ok"), ("A0005", "failed")],
                         ids=["dies-once-then-renders", "dies-every-time"])
def test_the_local_pool_survives_a_dying_worker_and_retries_its_report_once(tmp_path, dying, status):
    """A worker process that dies breaks a process pool, and every report in it: only its own report pays."""
    from conftest import dying_template

    marks = tmp_path / "marks"
    marks.mkdir()
    tpl = dying_template(tmp_path / "tpl.ipynb", marks)  # A0004 kills its worker once, A0005 every time
    ids = ["A0001", "A0002", dying, "A0007", "A0011"]
    batch = kr.run(SAMPLE, ids, period_end=END, out=tmp_path / "out", template=tpl, formats="html,ipynb", jobs=2,
                   progress=False)
    r = batch.reports.set_index("report")
    assert r["status"].to_dict() == {"A0001": "ok", "A0002": "failed", dying: status, "A0007": "ok", "A0011": "ok"}
    runs = {p.stem: int(p.read_text()) for p in marks.glob("*.runs")}
    assert runs[dying] == 2  # retried once, alone; not a third time
    assert all(runs[a] in (1, 2) for a in ("A0001", "A0002", "A0007", "A0011"))  # a co-runner is rendered again
    errors = {e["report"]: e["error"] for e in json.loads(batch.manifest.read_text())["reports"]}
    assert errors["A0002"]["message"] == "boom for A0002"  # a failing cell is not a dying worker
    if status == "ok":
        nb = nbformat.read(r.loc[dying, "ipynb"], as_version=4)
        assert f"rendered {dying} on run 2" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    else:
        assert errors[dying]["type"] == "WorkerDied"
        assert errors[dying]["message"].startswith("the worker process rendering this report died twice, the second "
                                                   "time rendering it alone")
        assert not (batch.out / f"{dying}.html").exists()
    assert (batch.out / "A0011.html").is_file()
