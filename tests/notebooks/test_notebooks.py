"""Every notebook in notebooks/ runs top to bottom in a fresh kernel of the project's Python.

The notebooks are stored without outputs; a failing cell fails the test with the cell's source
and traceback. Run one by hand with ``.venv/bin/jupyter execute notebooks/<name>.ipynb``.
Measured on the project's 2-core machine: 01 about 12 s, 02 about 13 s (with the order book's
numba kernels already compiled; a cold cache adds a minute or two), 03 under a minute (it
trains SAC for 40,000 transitions) and 04 about 30 s. All four run in the default suite.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
KERNEL = "python3"
CELL_TIMEOUT_S = 300
STARTUP_TIMEOUT_S = 120


def run_notebook(name: str) -> tuple[nbformat.NotebookNode, float]:
    """Execute ``notebooks/<name>`` from the notebooks folder (as Jupyter starts it); returns the
    executed notebook and the wall-clock seconds it took."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name}: a cell failed:\n{exc}", pytrace=False)
    return notebook, time.monotonic() - start


def _errors(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


def _text(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_the_kernel_is_the_projects_python() -> None:
    command = KernelManager(kernel_name=KERNEL).format_kernel_cmd()
    assert command[0] == sys.executable, (
        f"kernel {KERNEL!r} starts {command[0]}, not this interpreter ({sys.executable}); "
        "a user-level kernelspec may shadow the virtualenv's (`jupyter kernelspec list`)"
    )


def test_the_four_notebooks_are_there() -> None:
    expected = {"01_data_and_calibration", "02_market_simulator", "03_train_sac",
                "04_evaluate_and_stress"}  # fmt: skip
    assert expected <= {path.stem for path in NOTEBOOKS.glob("*.ipynb")}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: outputs stored in the cell starting {cell.source[:60]!r}; clear "
                "the outputs (Jupyter / VS Code: Clear All Outputs) before committing"
            )


@pytest.mark.data
def test_data_and_calibration_notebook_runs() -> None:
    notebook, seconds = run_notebook("01_data_and_calibration.ipynb")
    print(f"01_data_and_calibration: {seconds:.0f} s")
    assert not _errors(notebook)
    text = _text(notebook)
    assert "147,916 events" in text  # the GOOG day of the data README
    assert "What the model does not reproduce:" in text
    assert _images(notebook) >= 8  # day, rates + fill curve, spread matrix, 5 report figures


def test_market_simulator_notebook_runs() -> None:
    notebook, seconds = run_notebook("02_market_simulator.ipynb")
    print(f"02_market_simulator: {seconds:.0f} s")
    assert not _errors(notebook)
    assert _images(notebook) >= 7  # paths, book paths, depth/queues, queue position, CST, 3 reports


def test_train_sac_notebook_runs_and_leaves_nothing_behind() -> None:
    notebook, seconds = run_notebook("03_train_sac.ipynb")
    print(f"03_train_sac: {seconds:.0f} s")
    assert not _errors(notebook)
    assert _images(notebook) >= 4  # learning curve, quotes at two times, PnL distributions
    text = _text(notebook)
    store = re.search(r"temporary store sqlite:///(\S+)/mlflow\.db", text)
    assert store is not None, "the notebook no longer prints its temporary store"
    assert not Path(store.group(1)).exists(), "the temporary store was not deleted"
    assert re.search(r"exported: best at [\d,]+ transitions", text)


def test_evaluate_and_stress_notebook_runs() -> None:
    notebook, seconds = run_notebook("04_evaluate_and_stress.ipynb")
    print(f"04_evaluate_and_stress: {seconds:.0f} s")
    assert not _errors(notebook)
    text = _text(notebook)
    assert "skipping latency_shock" in text  # an order-book scenario, no meaning here
    for name in ("flash_crash", "liquidity_drought", "toxic_flow", "volatility_spike"):
        assert f"{name}: " in text
    assert _images(notebook) >= 4  # PnL, inventory risk, stress heatmap, flash crash paths
