"""A real browser: what an analyst does with the KPI explorer notebook in JupyterLab.

Starts ``jupyter lab`` (this interpreter's) on 127.0.0.1 with a token, in a temporary root
holding a copy of ``notebooks/01_kpi_explorer.ipynb``; opens the notebook in headless Chromium
through Playwright; runs all cells from the Run menu; checks the widgets render; picks another
account in the explorer and checks that the table shows that account's numbers; saves
screenshots to ``$KAMTOOLS_ARTIFACTS`` (default ``build/artifacts/``). The server and its
kernels are stopped whatever happens.

Chromium is Debian's (``apt-get install -y chromium``; ``.ci/run`` installs it): Playwright's own
browser download cannot work here, so it is given as ``executable_path``. Without Chromium or the
``playwright`` package the test skips, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_kpi_explorer.ipynb"
CHROMIUM = Path(os.environ.get("KAMTOOLS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
ACCOUNT = "A0004"  # picked in the explorer; the notebook opens on A0001

# Time limits (seconds); together they bound the test at about three minutes.
SERVER_START = 60
PAGE_LOAD = 60
RUN_ALL = 150
STEP = 30


def _artifacts() -> Path:
    path = Path(os.environ.get("KAMTOOLS_ARTIFACTS", ROOT / "build" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _require_browser():
    """Skip (fail in CI) with the reason when the browser cannot run here."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package 'playwright' is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        missing.append(f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium; .ci/run installs it)")
    if missing:
        reason = "browser test: " + "; ".join(missing)
        if IN_CI:
            pytest.fail(reason + ". CI must run this test.")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Ids of the processes started by ``pid`` (Linux /proc), children first found first."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    parents = {}
    for d in proc.iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def _stop(proc: subprocess.Popen, base: str, token: str):
    """Stop the server and its kernels: ask it to shut down, then signal what is left, by id."""
    kids = _descendants(proc.pid)  # the kernels run in sessions of their own
    try:
        req = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                     headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=5).close()
    except (urllib.error.URLError, OSError):
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebook; yields (base URL, token)."""
    _require_browser()
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"terminals_enabled": False},
        "LanguageServerManager": {"autodetect": False},
    }))
    (config / "jupyter_lab_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                   "extension_manager": "readonly"},
    }))
    user_settings = {  # no news, no update check, no kernel dialog
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"autoStartDefaultKernel": True},
    }
    for name, value in user_settings.items():
        path = tmp_path / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "Agg",
    }
    log = open(tmp_path / "jupyter.log", "w")  # noqa: SIM115  (closed in finally)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(tmp_path / 'jupyter.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {SERVER_START} s:\n"
                            f"{(tmp_path / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        _stop(proc, base, token)
        log.close()
        shutil.copy(tmp_path / "jupyter.log", _artifacts() / "browser_jupyter.log")


def _expected_revenue(account: str) -> str:
    """The revenue of the explorer's last period for ``account``, as its table shows it."""
    import kamtools as kt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = kt.sample.load()
    v = kt.compute(data, ["revenue"], period="Q")
    last = v["period"].max()
    value = v[(v["entity"] == account) & (v["period"] == last)]["value"].iloc[0]
    return f"{value:,.0f}"


def test_jupyterlab_runs_the_explorer_notebook_and_the_widgets_respond(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    artifacts = _artifacts()
    expected = _expected_revenue(ACCOUNT)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.set_default_timeout(STEP * 1000)
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=PAGE_LOAD * 1000)
            page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=PAGE_LOAD * 1000)
            # the kernel is up when the status bar says "Python 3 (ipykernel) | Idle"
            # (a "Select Kernel" dialog, where one shows, is answered with its default)
            deadline = time.monotonic() + PAGE_LOAD
            while not page.locator("#jp-main-statusbar", has_text=re.compile(r"Python.*\|\s*Idle")).count():
                dialog = page.locator(".jp-Dialog .jp-mod-accept")
                if dialog.count():
                    dialog.first.click()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the kernel did not start within {PAGE_LOAD} s")
                page.wait_for_timeout(250)
            page.screenshot(path=str(artifacts / "browser_loaded.png"))

            # Run > Run All Cells, as an analyst does
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.wait_for_function(  # it started: some cell is running or has run
                """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
                        .some(p => /^\\[(\\*|\\d+)\\]:$/.test(p.textContent.trim()))"""
            )

            # done: every code cell has an execution count and the kernel is idle again
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
                    const idle = document.querySelector(
                        ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']");
                    return prompts.length > 0 && idle !== null
                        && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
                }""",
                timeout=RUN_ALL * 1000,
            )
            errors = page.locator(".jp-OutputArea-output", has_text="Traceback")
            assert errors.count() == 0, errors.first.inner_text()

            # the widgets rendered
            explorer = page.locator(".kamtools-explorer").first
            explorer.wait_for(state="visible")
            for cls in ("kamtools-explorer", "kamtools-designer", "kamtools-map"):
                assert page.locator(f".{cls}").count() >= 1, f"no .{cls} on the page"
            assert page.get_by_text("Error displaying widget").count() == 0
            plot = explorer.locator("img.kamtools-plot").first
            plot_before = plot.get_attribute("src")
            assert plot_before

            # pick another account; the table follows
            explorer.scroll_into_view_if_needed()
            table = explorer.locator(".kamtools-table").first
            before = table.text_content()
            assert "A0001" in before
            select = explorer.locator(".kamtools-account select").first
            # ipywidgets gives each option its label as value (the text shows spaces as no-break spaces)
            value = select.locator("option", has_text=f"({ACCOUNT})").first.get_attribute("value")
            select.select_option(value=value)
            page.wait_for_function(
                "([el, id]) => el.textContent.includes(id)", arg=[table.element_handle(), ACCOUNT],
                timeout=STEP * 1000,
            )
            after = table.text_content()
            assert after != before
            assert expected in after, f"revenue {expected} of {ACCOUNT} not in the table:\n{after}"

            # the plot follows too; then a picture of the explorer, top first
            page.wait_for_function(
                "([el, src]) => el.getAttribute('src') && el.getAttribute('src') !== src",
                arg=[plot.element_handle(), plot_before], timeout=STEP * 1000,
            )
            page.locator("#jp-main-statusbar", has_text=re.compile(r"Python.*\|\s*Idle")).wait_for()
            explorer.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "browser_kpi_explorer.png"))
        except Exception:
            page.screenshot(path=str(artifacts / "browser_failure.png"))
            raise
        finally:
            browser.close()
