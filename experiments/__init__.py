"""The platform's commands: train, evaluate, reproduce (``python -m experiments.<name>``)."""

import os
import sys
import tempfile

# TensorFlow's C++ warnings are noise in a command's output; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_STARTUP_NOISE = (
    "absl::InitializeLog",  # "All log messages before absl::InitializeLog() ..."
    "cuInit",  # "failed call to cuInit": no GPU driver, the CPU is used
    "cudart_stub",  # "Could not find cuda drivers on your machine"
    "oneDNN custom operations",
    "cpu_feature_guard",  # "This TensorFlow binary is optimized to use available CPU ..."
    "rebuild TensorFlow with the appropriate compiler flags",
)
"""Lines TensorFlow writes to the process's stderr before its logging starts, on a machine
without a GPU: they say nothing a user can act on, and TF_CPP_MIN_LOG_LEVEL cannot hide them."""


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow, find its devices and run one op with file descriptor 2 captured, then
    write back every captured line but :data:`_STARTUP_NOISE` (a real error is still shown)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            tf.add(tf.constant(0.0), 1.0)  # the first op logs the CPU's instruction sets
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines(keepends=True):
            if not any(noise in line for noise in _STARTUP_NOISE):
                sys.stderr.write(line)


_import_tensorflow_quietly()
