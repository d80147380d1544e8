"""Every pinned dependency is installed at its pinned version and imports together."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"

# distribution name -> module to import
MODULES = {
    "tensorflow": "tensorflow",
    "tensorflow-probability": "tensorflow_probability",
    "tf-keras": "tf_keras",
    "keras": "keras",
    "gymnasium": "gymnasium",
    "numpy": "numpy",
    "scipy": "scipy",
    "numba": "numba",
    "pandas": "pandas",
    "statsmodels": "statsmodels",
    "pandas-datareader": "pandas_datareader",
    "quantstats": "quantstats",
    "riskfolio-lib": "riskfolio",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "mlflow": "mlflow",
    "pyyaml": "yaml",
    "pydantic": "pydantic",
    "tqdm": "tqdm",
    "rich": "rich",
    "nbformat": "nbformat",
    "nbclient": "nbclient",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
}


def pins() -> dict[str, str]:
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_every_requirement_is_pinned_exactly():
    lines = [
        ln.strip()
        for ln in REQUIREMENTS.read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    loose = [ln for ln in lines if "==" not in ln]
    assert not loose, f"unpinned requirements: {loose}"


@pytest.mark.parametrize("dist", sorted(pins()))
def test_installed_version_matches_the_pin(dist):
    assert importlib.metadata.version(dist) == pins()[dist]


@pytest.mark.parametrize("dist", sorted(MODULES))
def test_imports(dist):
    assert dist in pins(), f"{dist} is imported by the platform but not pinned"
    importlib.import_module(MODULES[dist])


def test_tensorflow_probability_runs_beside_tf_keras():
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd, tfb = tfp.distributions, tfp.bijectors
    squashed = tfd.TransformedDistribution(tfd.Normal(0.0, 1.0), tfb.Tanh())
    x = tf.constant([0.5])
    # log-density of tanh(Z) at x: log N(atanh x) - log(1 - x^2)
    expected = tfd.Normal(0.0, 1.0).log_prob(tf.atanh(x)) - tf.math.log(1.0 - x**2)
    tf.debugging.assert_near(squashed.log_prob(x), expected, atol=1e-5)


def test_tensorflow_probability_needs_tf_keras():
    """Without tf-keras, tensorflow-probability cannot be imported: the pin is load-bearing."""
    code = (
        "import sys; sys.modules['tf_keras'] = None\n"
        "try:\n"
        "    import tensorflow_probability as tfp; tfp.distributions.Normal(0., 1.)\n"
        "except Exception as e:\n"
        "    print('FAILED', type(e).__name__, e)\n"
        "else:\n"
        "    print('IMPORTED')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    assert "FAILED" in out and "tf_keras" in out.replace("-", "_"), out
