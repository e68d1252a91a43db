"""Reports on a Dask cluster: the same files as the local pool, retry-once on dead workers, clear errors.

A real cluster, as a user with an existing deployment has one: a ``dask
scheduler`` and two ``dask worker`` processes (one thread each, with their
nannies) on 127.0.0.1, started once for the module and always torn down with
every process they started. The reports reach it only through its address.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import dying_template

from kamtools import report as kr
from kamtools.cli import main
from kamtools.exceptions import ClusterError, ParameterError

if os.environ.get("CI") == "true":
    import distributed  # noqa: F401 - CI installs the test extra: a missing distributed fails here, never skips
else:
    pytest.importorskip("distributed", reason='needs pip install "kamtools[dask]" (make install does it)')

import psutil  # a dependency of distributed

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "data" / "sample"
END = "2025-12-31"
START_TIMEOUT = 60  # seconds for the scheduler and the workers to come up on a loaded 2-core machine


class Cluster:
    """A scheduler and workers in subprocesses; ``close`` ends them and everything they started."""

    def __init__(self, tmp: Path):
        self.tmp, self.procs, self.address = tmp, [], None

    def _spawn(self, name: str, args: list, env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_scheduler(self):
        info = self.tmp / "scheduler.json"
        self._spawn("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(info)])
        deadline = time.monotonic() + START_TIMEOUT
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]

    def start_worker(self, name: str, env: dict | None = None):
        self._spawn(name, ["distributed.cli.dask_worker", self.address, "--name", name, "--nthreads", "1",
                           "--nworkers", "1", "--no-dashboard", "--memory-limit", "0",
                           "--local-directory", str(self.tmp / name)], env)

    def wait_for_workers(self, n: int):
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT)

    def close(self):
        family = []
        for p in self.procs:
            try:
                family += [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for p in reversed(self.procs):  # workers first, then the scheduler
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        _, alive = psutil.wait_procs(family, timeout=10)
        for p in alive:  # a kernel of a worker that was killed: nothing may outlive the cluster
            p.kill()
        psutil.wait_procs(alive, timeout=10)
        return alive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.start_scheduler()
        c.start_worker("w1")
        c.start_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()
        assert all(p.poll() is not None for p in c.procs)


def strip_run(nb: nbformat.NotebookNode) -> dict:
    """What legitimately differs between two renders of the same notebook: timings, cell ids, the inputs' path."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.pop("id", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = re.sub(r'(?m)^prepared = ".*"$', 'prepared = "..."', cell.source)
    return nb


def without_seconds(path: Path) -> dict:
    doc = json.loads(path.read_text())
    for e in doc["reports"]:
        e.pop("seconds")
    return doc


# --------------------------------------------------------------------------- the same reports as the local pool


def test_a_cluster_renders_the_same_reports_as_this_machine(cluster, tmp_path):
    ids = ["A0001", "A0139", "NOPE"]  # a key account, O'Brien & Sons (non-key), an id not in the data
    kw = dict(period_end=END, portfolio=True, formats="html,ipynb", progress=False)
    here = kr.run(SAMPLE, ids, out=tmp_path / "here", jobs=1, **kw)
    there = kr.run(SAMPLE, ids, out=tmp_path / "there", executor="dask", scheduler=cluster.address, **kw)

    status = {"A0001": "ok", "A0139": "ok", "NOPE": "failed", "portfolio": "ok"}
    assert here.reports.set_index("report")["status"].to_dict() == status
    assert there.reports.set_index("report")["status"].to_dict() == status
    for name in ("A0001", "A0139", "portfolio"):
        html = (there.out / f"{name}.html").read_bytes()
        assert html == (here.out / f"{name}.html").read_bytes(), name  # the client's page, byte for byte
        a = nbformat.read(here.out / f"{name}.ipynb", as_version=4)
        b = nbformat.read(there.out / f"{name}.ipynb", as_version=4)
        assert [c.outputs for c in b.cells if c.cell_type == "code"] == [
            c.outputs for c in a.cells if c.cell_type == "code"], name
        assert strip_run(b) == strip_run(a), name
    assert b"Westfield Power SA" in (there.out / "A0001.html").read_bytes()  # A0001's name (accounts.csv)
    assert without_seconds(there.manifest) == without_seconds(here.manifest)
    seconds = re.compile(r"<td class=num>[0-9.]+</td>")
    assert seconds.sub("", there.index.read_text()) == seconds.sub("", here.index.read_text())
    assert "account id &#x27;NOPE&#x27; is not in the data" in there.index.read_text()

    again = kr.run(SAMPLE, ids, out=tmp_path / "there", executor="dask", scheduler=cluster.address, **kw)
    assert again.reports.set_index("report")["status"].to_dict() == {**status, "A0001": "skipped",
                                                                     "A0139": "skipped", "portfolio": "skipped"}


def test_the_command_renders_on_a_cluster(cluster, tmp_path):
    tpl = dying_template(tmp_path / "tpl.ipynb", tmp_path)
    result = CliRunner().invoke(main, ["report", "A0001", "A0002", "--data", "sample", "--period-end", END, "--out",
                                       str(tmp_path / "out"), "--template", str(tpl), "--executor", "dask",
                                       "--scheduler", cluster.address])
    assert result.exit_code == 1, result.output  # A0002's cell raises
    assert "1 rendered, 0 up to date, 1 failed." in result.output
    assert "FAILED A0002: boom for A0002" in result.output
    assert re.search(r"\[\d/2\] A0001 ok \(\d+\.\d s\)", result.output)  # progress: one line per report
    assert (tmp_path / "out" / "A0001.html").is_file() and not (tmp_path / "out" / "A0002.html").exists()


# --------------------------------------------------------------------------- workers that die


def test_a_report_whose_worker_dies_is_retried_once_and_twice_is_a_failure(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    tpl = dying_template(tmp_path / "tpl.ipynb", marks)
    cluster.wait_for_workers(2)
    batch = kr.run(SAMPLE, ["A0001", "A0002", "A0004", "A0005"], period_end=END, out=tmp_path / "out", template=tpl,
                   formats="html,ipynb", executor="dask", scheduler=cluster.address, progress=False)
    r = batch.reports.set_index("report")
    assert r["status"].to_dict() == {"A0001": "ok", "A0002": "failed", "A0004": "ok", "A0005": "failed"}
    runs = {p.stem: int(p.read_text()) for p in marks.glob("*.runs")}
    assert runs == {"A0001": 1, "A0002": 1, "A0004": 2, "A0005": 2}  # retried once; the dying one not a third time
    nb = nbformat.read(r.loc["A0004", "ipynb"], as_version=4)
    assert "rendered A0004 on run 2" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    errors = {e["report"]: e["error"] for e in json.loads(batch.manifest.read_text())["reports"]}
    assert errors["A0005"]["type"] == "WorkerDied"
    assert re.fullmatch(r"the Dask worker rendering this report died twice \(tcp://127\.0\.0\.1:\d+, then "
                        r"tcp://127\.0\.0\.1:\d+\); the report was retried once and not again\. .*",
                        errors["A0005"]["message"])
    assert errors["A0002"] == {"type": "ValueError", "message": "boom for A0002", "cell": {
        "index": 3, "execution_count": 4, "source": 'if account_id == "A0002":\n    raise ValueError("boom for " + '
                                                    "account_id)"}}
    assert not (batch.out / "A0005.html").exists() and (batch.out / "A0004.html").is_file()


def test_the_scheduler_giving_up_first_resubmits_once():
    """With allowed-failures 0 the scheduler raises KilledWorker at the first death: resubmit once, then fail."""
    from distributed import KilledWorker

    class Future:
        status = "error"

        def exception(self):
            return KilledWorker("k", None, 0)

    c = kr._DaskCluster.__new__(kr._DaskCluster)
    c.address, c.resubmitted = "tcp://s:8786", set()
    starts = {"A1": ["tcp://w1:1"]}
    c._starts = lambda job: starts[job["report"]]
    job = {"report": "A1"}
    assert c._outcome(Future(), job) is None  # first death: resubmitted
    starts["A1"].append("tcp://w2:1")
    res = c._outcome(Future(), job)
    assert res["status"] == "failed" and res["error"]["type"] == "WorkerDied"
    assert "died twice (tcp://w1:1, then tcp://w2:1)" in res["error"]["message"]


# --------------------------------------------------------------------------- clear errors


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"scheduler": "tcp://127.0.0.1:8786"}, r"scheduler='tcp://127.0.0.1:8786' is for a Dask cluster: pass "
                                                r"executor='dask' too"),
        ({"executor": "dask"}, r"executor='dask' needs the address of the cluster's scheduler: pass scheduler="),
        ({"executor": "dask", "scheduler": "tcp://h:1", "jobs": 4}, r"jobs=4 counts worker processes of this machine"),
        ({"executor": "ray"}, r"executor='ray': use one of 'local', 'dask'"),
    ],
    ids=["scheduler-alone", "dask-alone", "dask-with-jobs", "unknown"],
)
def test_executor_arguments_must_agree(tmp_path, kw, match):
    with pytest.raises(ParameterError, match=match):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path, progress=False, **kw)
    assert list(tmp_path.iterdir()) == []


def test_the_command_says_scheduler_needs_the_dask_executor(tmp_path):
    result = CliRunner().invoke(main, ["report", "A0001", "--data", "sample", "--period-end", END, "--out",
                                       str(tmp_path), "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 1
    assert "is for a Dask cluster: pass executor='dask' too (--executor dask)" in result.output


def test_an_unreachable_scheduler_is_named_within_the_timeout(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(kr, "DASK_CONNECT_TIMEOUT", 2.0)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=rf"Cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}' within 2 s"):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path / "out", executor="dask",
               scheduler=f"tcp://127.0.0.1:{port}", progress=False)
    assert time.monotonic() - t0 < 15
    assert not (tmp_path / "out").exists()  # nothing loaded, nothing written


def test_without_distributed_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ParameterError, match=r'needs the distributed package.*pip install "kamtools\[dask\]"'):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path, executor="dask", scheduler="tcp://h:1",
               progress=False)


def test_importing_kamtools_does_not_import_dask():
    code = ("import sys, kamtools, kamtools.report, kamtools.cli; "
            "print(','.join(m for m in ('distributed', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_workers_of_another_kamtools_version_get_a_warning(cluster, monkeypatch):
    monkeypatch.setattr(kr, "__version__", "99.0")
    with pytest.warns(UserWarning, match=r"kamtools here is 99.0, but on the Dask workers tcp://127.0.0.1:\d+ has "
                                         r"\S+.*pip install \"kamtools\[dask\]==99.0\""):
        kr._DaskCluster(cluster.address).close()


def test_a_worker_that_cannot_import_kamtools_is_named(cluster, tmp_path):
    # last: it adds a broken worker to the module's cluster. Its Python finds a kamtools that fails to import.
    shadow = tmp_path / "shadow" / "kamtools"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("kamtools broken for the test")\n')
    cluster.start_worker("broken", env={"PYTHONPATH": str(shadow.parent)})
    cluster.wait_for_workers(3)
    with pytest.raises(ClusterError, match=r"1 of the 3 Dask workers at tcp://127.0.0.1:\d+ cannot import kamtools "
                                           r"\(tcp://127.0.0.1:\d+: ImportError: kamtools broken for the test\)\. "
                                           r"Install it in the workers' Python environment"):
        kr.run(SAMPLE, ["A0001"], period_end=END, out=tmp_path / "out", executor="dask", scheduler=cluster.address,
               progress=False)
