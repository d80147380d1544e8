"""A training run's checkpoints and its interruptions.

:class:`Checkpoints` keeps a run's newest checkpoints on disk (TensorFlow's for the learner and
the features, a pickle for the replay buffer, the markets and the loop's :class:`LoopState`) and
publishes each to the run's artifacts; :class:`StopSignals` turns SIGINT and SIGTERM into a
request the loop honours at the end of a step. (Here, not in the training script: a pickled
:class:`LoopState` must name an importable module, not ``__main__``.)
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from agents.tf_sac.learner import SACLearner
from features import FeaturePipeline
from tracking import Tracker

PUBLISHED = "checkpoints/latest"
"""Artifact folder of a run's newest checkpoint (overwritten at each checkpoint)."""


@dataclass
class LoopState:
    """The training loop's own counters and random state (checkpointed with the rest)."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    episode_return: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warmup_rng: dict[str, Any] = field(default_factory=dict)
    next_eval: int = 0
    next_checkpoint: int = 0
    best_eval: float = float("-inf")
    best_at: int = 0
    elapsed_s: float = 0.0  # wall-clock seconds of training, over the run and its resumes


class Interrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after writing its checkpoint (the run is KILLED)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """Turn SIGINT and SIGTERM into a request the loop reads at the end of each step.

    A signal in the middle of a checkpoint or an update would leave either half-written; the
    loop instead finishes its step, checkpoints and stops. A second Ctrl-C stops at once
    (KeyboardInterrupt), keeping the last complete checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> StopSignals:
        for s in self.SIGNALS:
            try:
                self._previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread (e.g. a worker of a sweep)
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Checkpoints:
    """TF checkpoint (learner + features) and a pickle (replay, market, loop) per step count.

    Both carry the transition count in their name; a pickle is written after its TF
    checkpoint and renamed into place, so the newest pair with both halves is complete.
    """

    def __init__(
        self, directory: Path, learner: SACLearner, pipeline: FeaturePipeline, best: tf.Module
    ) -> None:
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(learner=learner, pipeline=pipeline, best_actor=best)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory / "tf"), 3)

    def save(self, env_steps: int, state: dict[str, Any]) -> None:
        self.manager.save(checkpoint_number=env_steps)
        tmp = self.directory / f".state-{env_steps}.pkl.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.directory / f"state-{env_steps}.pkl")
        for old in self.directory.glob("state-*.pkl"):
            if int(old.stem.split("-")[1]) not in self._numbers():
                old.unlink()

    def _numbers(self) -> list[int]:
        return [int(p.rsplit("-", 1)[1]) for p in self.manager.checkpoints]

    def latest(self) -> int | None:
        """The newest step count with both halves on disk, or None."""
        for number in sorted(self._numbers(), reverse=True):
            if (self.directory / f"state-{number}.pkl").exists():
                return number
        return None

    def restore(self, number: int) -> dict[str, Any]:
        path = next(p for p in self.manager.checkpoints if p.endswith(f"-{number}"))
        self.checkpoint.restore(path).assert_existing_objects_matched()
        with open(self.directory / f"state-{number}.pkl", "rb") as f:
            state: dict[str, Any] = pickle.load(f)
        return state

    def publish(self, number: int, run: Tracker) -> None:
        """Log checkpoint ``number`` to the run's artifacts under fixed names
        (:data:`PUBLISHED`), so that the store keeps the newest checkpoint of a run, not all."""
        staging = self.directory / ".publish"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "tf").mkdir(parents=True)
        self.checkpoint.write(str(staging / "tf" / "ckpt"))
        shutil.copyfile(self.directory / f"state-{number}.pkl", staging / "state.pkl")
        (staging / "checkpoint.json").write_text(json.dumps({"transitions": number}))
        run.log_artifacts(staging, PUBLISHED)
        shutil.rmtree(staging, ignore_errors=True)

    def adopt_published(self, folder: Path) -> None:
        """Make a downloaded :data:`PUBLISHED` folder this directory's newest checkpoint."""
        number = int(json.loads((folder / "checkpoint.json").read_text())["transitions"])
        self.checkpoint.read(str(folder / "tf" / "ckpt")).assert_existing_objects_matched()
        self.manager.save(checkpoint_number=number)
        shutil.copyfile(folder / "state.pkl", self.directory / f"state-{number}.pkl")
