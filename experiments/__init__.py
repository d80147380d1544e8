"""The platform's commands: train, evaluate, reproduce (``python -m experiments.<name>``)."""

import os

# TensorFlow's C++ warnings are noise in a command's output; a user's own setting wins.
# (The few lines TensorFlow prints before its logging initializes cannot be silenced.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
