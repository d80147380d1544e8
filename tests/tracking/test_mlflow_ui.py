"""The MLflow UI serves a demo's results over HTTP, and both the UI and the evaluation report
render in a real browser.

The demo (``experiments.demo``) runs end to end on tiny copies of its configs: the baselines'
evaluation, a short SAC training and the SAC's evaluation, into a temporary store laid out
like the project's (``mlflow.db`` beside ``mlartifacts/``). The command the demo prints last
is then started as it is (only on a free loopback port, with one worker), and the REST API
must serve the runs, their metrics and their artifacts exactly as the store holds them.

The last tests open the SAC evaluation's ``reports/index.html`` and the run's page in the UI in
headless Chromium (Debian's ``chromium``; ``make test`` installs it where it can) and save
their screenshots as artifacts of that run (``reports/screenshots/``). Without Chromium they
skip, unless the machine could install it (root with apt-get): then they fail and say how.
"""

from __future__ import annotations

import base64
import contextlib
import html.parser
import io
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from experiments import demo, evaluate
from experiments.config import load_config, to_yaml
from tracking import Tracker, download_artifacts, load_run, metric_history, ui_command

ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 30.0

# Budgets small enough for the default test run (the printed command is what is tested).
TINY_BASELINES = ["evaluation.n_paths=20", "market.n_steps=50"]
TINY_STEPS, TINY_EVAL_EVERY = 1600, 800
TINY_TRAINING = [
    "training.num_envs=4",
    f"training.total_steps={TINY_STEPS}",
    "training.warmup_steps=400",
    "training.checkpoint_every=800",
    f"training.eval_every={TINY_EVAL_EVERY}",
    "training.eval_paths=20",
    "agent.hidden_sizes=[16,16]",
    "agent.batch_size=64",
    "agent.jit_compile=false",
    "evaluation.n_paths=200",
]

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@dataclass(frozen=True)
class DemoResult:
    """A finished tiny demo: its store, its printed lines and the runs it reported."""

    root: Path
    uri: str
    lines: list[str]
    eval_runs: dict[str, str]  # experiment name -> evaluation run id, as printed


def _tiny_config(source: str, overrides: list[str], target: Path) -> Path:
    target.write_text(to_yaml(load_config(ROOT / source, overrides)))
    return target


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """``experiments.demo`` on tiny configs, into ``<tmp>/mlflow.db`` + ``<tmp>/mlartifacts``."""
    root = tmp_path_factory.mktemp("project")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    store = [f"tracking.uri={uri}"]
    baselines = _tiny_config(
        evaluate.DEFAULT_CONFIG, [*store, *TINY_BASELINES], root / "demo_tiny.yaml"
    )
    sac = _tiny_config(
        demo.SAC_CONFIG,
        [*store, *TINY_TRAINING, f"training.checkpoint_dir={root / 'checkpoints'}"],
        root / "cj_sac_tiny.yaml",
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "DEFAULT_CONFIG", str(baselines))
        patch.setattr(demo, "SAC_CONFIG", str(sac))
        # the demo's own training budget, where it sets one, overrides the tiny config's
        patch.setattr(demo, "TRAIN_STEPS", TINY_STEPS, raising=False)
        patch.setattr(demo, "EVAL_EVERY", TINY_EVAL_EVERY, raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = demo.main([])
    text = out.getvalue()
    assert code == 0, f"{text[-2000:]}\n{err.getvalue()[-2000:]}"
    printed = re.findall(r"Run ([0-9a-f]{32}) in experiment '([^']+)'", text)
    runs = {experiment: run_id for run_id, experiment in printed}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return DemoResult(root=root, uri=uri, lines=lines, eval_runs=runs)


# --------------------------------------------------------------------------------------------
# The server the printed command starts
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after 15 s or if workers linger."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        except ProcessLookupError:
            return
    with contextlib.suppress(ProcessLookupError):  # stragglers (uvicorn workers)
        os.killpg(process.pid, signal.SIGKILL)


def _with_port(command: list[str], port: int) -> list[str]:
    """The printed command on another port, with one worker (the machine's cores are shared)."""
    i = command.index("--port")
    return [*command[: i + 1], str(port), *command[i + 2 :], "--workers", "1"]


@pytest.fixture(scope="module")
def ui_server(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's last printed command, run on a free port; yields the server's base URL."""
    command = shlex.split(demo_run.lines[-1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # the command binds loopback by default
    cwd = tmp_path_factory.mktemp("ui_cwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log_path = cwd / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _with_port(command, port), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,  # its own process group, so stopping it stops its workers
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _health_ok(url):
            if process.poll() is not None:
                pytest.fail(f"the MLflow UI exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the MLflow UI was not healthy in {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        _stop(process)


def _get(url: str, route: str, query: dict[str, str] | None = None) -> bytes:
    full = f"{url}{route}?{urllib.parse.urlencode(query)}" if query else f"{url}{route}"
    with urllib.request.urlopen(full, timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200, full
        return bytes(response.read())


def _api(
    url: str, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
) -> Any:
    """POST ``body`` (or GET with ``query``) to ``/api/2.0/mlflow/<endpoint>``; the decoded JSON."""
    if body is None:
        return json.loads(_get(url, f"/api/2.0/mlflow/{endpoint}", query))
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        return json.loads(response.read())


def _artifact(url: str, run_id: str, path: str) -> bytes:
    """One artifact file's bytes, as the UI fetches it (``/get-artifact``)."""
    return _get(url, "/get-artifact", {"path": path, "run_uuid": run_id})


def _served_runs(url: str) -> dict[str, dict[str, Any]]:
    """Every run the server lists, by run id (REST ``runs/search`` over all experiments)."""
    experiments = _api(url, "experiments/search", {"max_results": 100})["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    found = _api(url, "runs/search", {"experiment_ids": ids, "max_results": 100})
    return {run["info"]["run_id"]: run for run in found.get("runs", [])}


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _listed(url: str, run_id: str, path: str) -> dict[str, dict[str, Any]]:
    files = _api(url, "artifacts/list", query={"run_id": run_id, "path": path}).get("files", [])
    return {f["path"]: f for f in files}


def _train_run_id(url: str, demo_run: DemoResult) -> str:
    evaluated = _served_runs(url)[demo_run.eval_runs["cj_sac"]]
    return _tags(evaluated)["mmrl.trained_run"]


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_the_demo_ends_with_the_command_that_opens_the_ui_on_its_store(
    demo_run: DemoResult,
) -> None:
    assert demo_run.lines[-1] == ui_command(demo_run.uri)
    assert "MLflow UI" in demo_run.lines[-2]
    assert set(demo_run.eval_runs) == {"demo", "cj_sac"}
    # The store is laid out like the project's: the database beside the artifact root.
    assert (demo_run.root / "mlflow.db").is_file()
    assert {p.name for p in (demo_run.root / "mlartifacts").iterdir()} == {"demo", "cj_sac"}


def test_the_ui_serves_every_run_of_the_store(ui_server: str, demo_run: DemoResult) -> None:
    html = _get(ui_server, "/").decode()
    assert "<html" in html.lower() and "mlflow" in html.lower()
    served = _served_runs(ui_server)
    train_id = _train_run_id(ui_server, demo_run)
    assert set(served) == {*demo_run.eval_runs.values(), train_id}
    jobs = {run_id: _tags(run)["mmrl.job"] for run_id, run in served.items()}
    assert sorted(jobs.values()) == ["evaluate", "evaluate", "train"]
    for run_id, run in served.items():
        stored = load_run(run_id, tracking_uri=demo_run.uri)
        assert run["info"]["status"] == stored.status == "FINISHED"
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        assert params == stored.params


def test_the_ui_serves_the_namespaced_metrics_and_their_history(
    ui_server: str, demo_run: DemoResult
) -> None:
    served = _served_runs(ui_server)
    train_id = _train_run_id(ui_server, demo_run)
    for run_id, run in served.items():
        # JSON has no NaN or inf: the server sends them as the strings "NaN", "Infinity".
        metrics = {m["key"]: float(m["value"]) for m in run["data"]["metrics"]}
        stored = load_run(run_id, tracking_uri=demo_run.uri).metrics
        assert metrics == pytest.approx(stored, nan_ok=True)
    train_keys = {m["key"] for m in served[train_id]["data"]["metrics"]}
    assert {"train/critic_loss", "train/actor_loss", "train/optimality_ratio"} <= train_keys
    assert all(key.startswith("train/") for key in train_keys)
    sac_eval = {m["key"] for m in served[demo_run.eval_runs["cj_sac"]]["data"]["metrics"]}
    for policy in ("sac", "cartea_jaimungal", "fixed_spread"):
        assert f"eval/{policy}/optimality_ratio" in sac_eval
    baselines = {m["key"] for m in served[demo_run.eval_runs["demo"]]["data"]["metrics"]}
    for policy in ("cartea_jaimungal", "glft", "glft_asymptotic", "as_finite", "fixed_spread"):
        assert f"eval/{policy}/reward_mean" in baselines

    key = "train/eval_reward_mean"
    history = _api(ui_server, "metrics/get-history", query={"run_id": train_id, "metric_key": key})
    points = sorted((int(m["step"]), float(m["value"])) for m in history["metrics"])
    assert [step for step, _ in points] == [800, 1600]
    assert points == metric_history(train_id, key, demo_run.uri)


def test_the_ui_serves_the_reports_figures_and_saved_model(
    ui_server: str, demo_run: DemoResult, tmp_path: Path
) -> None:
    sac_eval = demo_run.eval_runs["cj_sac"]
    train_id = _train_run_id(ui_server, demo_run)

    assert set(_listed(ui_server, sac_eval, "")) == {"config", "figures", "reports"}
    figures = _listed(ui_server, sac_eval, "figures")
    names = ("pnl_distributions", "inventory_risk", "quotes_vs_inventory", "learning_curve")
    assert {f"figures/{name}.png" for name in names} <= set(figures)
    png = _artifact(ui_server, sac_eval, "figures/learning_curve.png")
    assert png.startswith(b"\x89PNG") and len(png) == int(
        figures["figures/learning_curve.png"]["file_size"]
    )

    csv = _artifact(ui_server, sac_eval, "reports/results.csv")
    local = download_artifacts(sac_eval, "reports/results.csv", tmp_path, demo_run.uri)
    assert csv == local.read_bytes()
    table = pd.read_csv(io.BytesIO(csv), index_col=0)
    assert {"sac", "cartea_jaimungal", "fixed_spread"} <= set(table.index)

    model = _listed(ui_server, train_id, "model/sac_policy")
    assert "model/sac_policy/saved_model.pb" in model
    assert model["model/sac_policy/variables"]["is_dir"]
    pb = _artifact(ui_server, train_id, "model/sac_policy/saved_model.pb")
    assert len(pb) == int(model["model/sac_policy/saved_model.pb"]["file_size"]) > 0


# --------------------------------------------------------------------------------------------
# In a real browser: headless Chromium
# --------------------------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_TIMEOUT_S = 60.0
"""Wall-clock limit of one browser command, and of a page becoming ready."""
SETTLE_LIMIT_S = 10.0
"""At most this long after a page is ready, waiting for its HTML to stop changing."""
SCREENSHOT_ARTIFACTS = "reports/screenshots"
REPORT_WINDOW = (1280, 2400)
UI_WINDOW = (1400, 1000)
BROWSER_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--allow-file-access-from-files",  # the report page reads its linked tear sheets
    # none of the browser's own requests (accounts, updates, autofill): offline they hang
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-sync",
    "--no-pings",
    "--disable-features=OptimizationGuideModelDownloading,Translate,MediaRouter",
)

# Run in the report page: each image's decoded size, and each local link fetched (synchronous
# XHR, which file:// pages may do with --allow-file-access-from-files) with its <h1>.
IMAGES_JS = """Array.from(document.images, img => ({alt: img.alt, complete: img.complete,
  width: img.naturalWidth, height: img.naturalHeight}))"""
LINKS_JS = """Array.from(document.querySelectorAll("a[href]"))
  .map(a => [a.getAttribute("href"), a.href])
  .filter(([href]) => !/^[a-z][a-z0-9+.-]*:/i.test(href) && !href.startsWith("#"))
  .map(([href, url]) => {
    const link = {href: href, length: 0, heading: null, error: null};
    try {
      const xhr = new XMLHttpRequest();
      xhr.open("GET", url, false);
      xhr.send();
      link.length = xhr.responseText.length;
      const h1 = xhr.responseText.match(/<h1>([^<]*)/);
      link.heading = h1 ? h1[1].trim() : null;
    } catch (e) { link.error = String(e); }
    return link;
  })"""


def _can_install_chromium() -> bool:
    """Whether ``make test`` can install Chromium here: root, apt-get, and a ``chromium``
    candidate in the package lists."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-cache")):
        return False
    try:
        policy = subprocess.run(
            ["apt-cache", "policy", "chromium"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    candidate = re.search(r"Candidate:\s*(\S+)", policy)
    return candidate is not None and candidate.group(1) != "(none)"


class HeadlessChromium:
    """One headless Chromium, driven over the DevTools protocol on a pipe.

    ``--remote-debugging-pipe`` makes the browser read JSON commands, NUL-separated, on file
    descriptor 3 and write replies and events on 4; nothing else (no client library, no
    port). Pages are waited for on the wall clock with an explicit condition: the MLflow UI is a
    single-page app that fetches the run after the load event.
    """

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        args = [*BROWSER_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root in its sandbox
        # the pipe's ends on fds 3 and 4 (bash: dash takes no fd number above 9)
        shell = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        with log.open("wb") as stderr:
            self._process = subprocess.Popen(
                ["bash", "-c", shell, executable, *args, "about:blank"],
                pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                stdout=stderr, stderr=stderr, start_new_session=True,
            )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self.log = log
        self._buffer = b""
        self._last_id = 0
        self._session: str | None = None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Page.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command (on the page once attached); its result."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply["result"])

    def _read(self, deadline: float, method: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {method} in {BROWSER_TIMEOUT_S:.0f} s")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited:\n{self.log.read_text()[-3000:]}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, window: tuple[int, int], ready: str) -> float:
        """Load ``url`` in a ``window``-sized viewport, wait until the JavaScript condition
        ``ready`` holds and the page settles; the seconds it took."""
        start = time.monotonic()
        self.send("Emulation.setDeviceMetricsOverride", width=window[0], height=window[1],
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.send("Page.navigate", url=url)
        condition = f'document.readyState === "complete" && Boolean({ready})'
        while not self.evaluate(condition):
            if time.monotonic() - start > BROWSER_TIMEOUT_S:
                text = self.evaluate("document.body ? document.body.innerText : ''")
                raise TimeoutError(f"{url} not ready in {BROWSER_TIMEOUT_S:.0f} s: {text[:500]!r}")
            time.sleep(0.2)
        self._settle(min(start + BROWSER_TIMEOUT_S, time.monotonic() + SETTLE_LIMIT_S))
        return time.monotonic() - start

    def _settle(self, deadline: float, quiet_s: float = 1.0) -> None:
        """Wait until the page's HTML has not changed for ``quiet_s`` (placeholders replaced
        by what they wait for), or until ``deadline``."""
        html_now = self.evaluate("document.documentElement.outerHTML")
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s and time.monotonic() < deadline:
            time.sleep(0.25)
            previous, html_now = html_now, self.evaluate("document.documentElement.outerHTML")
            if html_now != previous:
                quiet_since = time.monotonic()

    def screenshot(self, path: Path) -> Path:
        """The viewport as a PNG file."""
        path.write_bytes(
            base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        )
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._session = None
            self.send("Browser.close")
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=15)
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    """Headless Chromium for the module; skips where it is absent and cannot be installed."""
    executable = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if executable is None:
        if _can_install_chromium():
            pytest.fail(
                "Chromium is not installed, and this machine can install it: run `make test` "
                "(it installs Debian's chromium) or `apt-get install -y chromium`"
            )
        pytest.skip(
            "Chromium is not installed and cannot be installed here (needs root, apt-get and "
            "a `chromium` package in the apt lists): install Chromium to run the browser tests"
        )
    home = tmp_path_factory.mktemp("chromium")
    chromium = HeadlessChromium(executable, home / "profile", home / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()


def _assert_not_blank(png: Path, window: tuple[int, int]) -> None:
    """The screenshot is the window's size and shows something: no single colour covers more
    than 95% of it, and it has more than 50 colours (text, figures)."""
    with Image.open(png) as image:
        assert image.size == window
        colours = image.convert("RGB").getcolors(maxcolors=window[0] * window[1])
    assert colours is not None
    dominant = max(count for count, _ in colours) / (window[0] * window[1])
    assert dominant < 0.95 and len(colours) > 50, (png, dominant, len(colours))


class _Tags(html.parser.HTMLParser):
    """The ``src`` of every ``<img>`` and the ``href`` of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        elif tag == "a" and found.get("href") is not None:
            self.links.append(found["href"] or "")


def _is_local(href: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I) and not href.startswith("#")


def _decodes(data: bytes) -> tuple[int, int]:
    """The pixel size of an image file's bytes (raises if they do not decode)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def _log_screenshots(demo_run: DemoResult, run_id: str, *pngs: Path) -> None:
    """Add screenshots to the evaluation run's artifacts, through :mod:`tracking`."""
    with Tracker("cj_sac", tracking_uri=demo_run.uri, run_id=run_id) as run:
        for png in pngs:
            run.log_artifact(png, SCREENSHOT_ARTIFACTS)


def test_the_report_renders_in_chromium_with_every_image_and_link(
    browser: HeadlessChromium, ui_server: str, demo_run: DemoResult, tmp_path: Path
) -> None:
    sac_eval = demo_run.eval_runs["cj_sac"]
    reports = download_artifacts(sac_eval, "reports", tmp_path / "run", demo_run.uri)
    page = reports / "index.html"

    # On disk first: every local link names a file, every image (embedded or not) decodes.
    tags = _Tags()
    tags.feed(page.read_text(encoding="utf-8"))
    local = [href for href in tags.links if _is_local(href)]
    assert len(local) == 3  # one tear sheet per policy: sac, cartea_jaimungal, fixed_spread
    for href in local:
        assert (reports / urllib.parse.unquote(href)).is_file(), href
    assert len(tags.images) >= 9  # two Riskfolio figures per policy and the seaborn figures
    for src in tags.images:
        if src.startswith("data:image/png;base64,"):
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
        else:
            assert _is_local(src), src
            data = (reports / urllib.parse.unquote(src)).read_bytes()
        width, height = _decodes(data)
        assert width > 100 and height > 100

    # Then in the browser: every image decoded, every link loads the policy's tear sheet.
    seconds = browser.open(page.as_uri(), REPORT_WINDOW, ready="document.images.length > 0")
    images = browser.evaluate(IMAGES_JS)
    assert len(images) == len(tags.images)
    for image in images:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    links = browser.evaluate(LINKS_JS)
    assert [link["href"] for link in links] == local
    for link in links:
        assert link["error"] is None and link["length"] > 10_000, link
        policy = link["href"].removesuffix("_tear_sheet.html")
        assert link["heading"] == f"cj_sac: {policy}"  # the tear sheet of the linked policy
    text = browser.evaluate("document.body.innerText")
    assert "cj_sac: evaluation report" in text and "Risk of the inventory PnL" in text
    shot = browser.screenshot(tmp_path / "report_index.png")
    _assert_not_blank(shot, REPORT_WINDOW)
    assert seconds < BROWSER_TIMEOUT_S

    # The screenshot becomes an artifact of the evaluation run, which the UI then serves.
    _log_screenshots(demo_run, sac_eval, shot)
    served = _artifact(ui_server, sac_eval, f"{SCREENSHOT_ARTIFACTS}/{shot.name}")
    assert served == shot.read_bytes()


def test_the_mlflow_ui_shows_the_run_in_chromium(
    browser: HeadlessChromium, ui_server: str, demo_run: DemoResult, tmp_path: Path
) -> None:
    sac_eval = demo_run.eval_runs["cj_sac"]
    record = load_run(sac_eval, tracking_uri=demo_run.uri)
    assert record.run_name
    url = f"{ui_server}/#/experiments/{record.experiment_id}/runs/{sac_eval}"
    # The single-page app rendered the run: its name, its id and its status are on the page.
    wanted = [record.run_name, sac_eval, "Finished"]
    ready = " && ".join(f"document.body.innerText.includes({json.dumps(w)})" for w in wanted)
    seconds = browser.open(url, UI_WINDOW, ready=ready)
    dom = browser.evaluate("document.documentElement.outerHTML")
    assert all(w in dom for w in wanted)
    assert "<title>" in dom and "MLflow" in browser.evaluate("document.title")
    shot = browser.screenshot(tmp_path / "mlflow_ui_run.png")
    _assert_not_blank(shot, UI_WINDOW)
    assert seconds < BROWSER_TIMEOUT_S
    _log_screenshots(demo_run, sac_eval, shot)
    listed = _listed(ui_server, sac_eval, SCREENSHOT_ARTIFACTS)
    assert f"{SCREENSHOT_ARTIFACTS}/{shot.name}" in listed
