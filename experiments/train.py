"""Train a SAC market maker from a config, with checkpoints, resume and MLflow logging.

    python -m experiments.train --config configs/cj_sac.yaml [--set training.total_steps=1e5]
    python -m experiments.train --config configs/cj_sac.yaml --resume RUN_ID

Reads top to bottom: config and tracking preflight, seeding, market, features, learner and
replay, (resume), the loop, the export. Counts are environment transitions (``num_envs``
per batched step). Checkpoints hold everything the future depends on: networks,
optimizers, temperature, normalization, replay buffer, the market's state and every
generator's state, so a resumed run continues as the uninterrupted one would have.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from rich.console import Console

from agents.base import Policy
from agents.tf_sac.learner import SACLearner
from agents.tf_sac.policy import SACPolicy, SquashedGaussianActor
from agents.tf_sac.replay import ReplayBuffer
from configs.schema import AnalyticMarketConfig, ExperimentConfig, MarketConfig
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.summary import (
    exact_ratios,
    optimal_policy,
    optimal_value,
    optimality,
    optimum_mean,
)
from experiments.config import (
    ConfigError,
    add_config_arguments,
    job_tracker,
    load_config,
    make_vector_env,
    to_yaml,
)
from experiments.progress import progress as progress_bar
from experiments.sac_model import export_policy
from experiments.seeding import seed_everything, stream_seed
from features import FeaturePipeline
from tracking import PROJECT_ROOT, Tracker, TrackingError, download_artifacts

DEFAULT_CHECKPOINT_ROOT = PROJECT_ROOT / "outputs" / "checkpoints"
EXIT_CONFIG, EXIT_NUMERICS = 2, 3


class NumericsError(RuntimeError):
    """A SAC loss became NaN or inf."""


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


def training_market(cfg: ExperimentConfig) -> MarketConfig:
    """The market the agent trains in: the config's, with the training's exploring starts.

    Starting episodes from inventories and times the policy would rarely reach makes the
    critic learn the whole (t, q) grid the optimal policy is a function of; the validation
    and evaluation markets start at the config's own (t = 0, q0).

    :raises ConfigError: exploring starts asked of a market that does not offer them.
    """
    t, market = cfg.training, cfg.market
    if isinstance(market, AnalyticMarketConfig):
        return market.model_copy(
            update={
                "q0_range": max(market.q0_range, t.explore_inventory),
                "random_start": market.random_start or t.explore_time,
            }
        )
    if t.explore_inventory or t.explore_time:
        raise ConfigError(
            f"training.explore_inventory / training.explore_time: exploring starts are "
            f"offered by the analytic market only, not by market.kind = {market.kind!r}"
        )
    return market


def make_pipeline(cfg: ExperimentConfig) -> FeaturePipeline:
    space = make_vector_env(cfg.market, 1).single_observation_space
    return FeaturePipeline.from_config(cfg.features, cfg.market, space)


def make_learner(cfg: ExperimentConfig, obs_dim: int) -> SACLearner:
    return SACLearner(obs_dim, 2, cfg.agent, seed=stream_seed(cfg.seed, "agent"))


def planned_updates(cfg: ExperimentConfig) -> int:
    """Updates the training budget allows: one batch per ``num_envs`` transitions after warmup."""
    t = cfg.training
    return max(1, (t.total_steps - t.warmup_steps) // t.num_envs * t.updates_per_step)


def set_learning_rates(learner: SACLearner, cfg: ExperimentConfig, updates: int) -> None:
    """The full rates for the first ``agent.lr_decay_start`` of :func:`planned_updates`, then a
    linear decay to zero at the last update (``agent.lr_decay``).

    The optimizers keep their rate in a variable: assigning it changes no traced graph,
    and it is checkpointed with the optimizer.
    """
    a = cfg.agent
    total = a.decay_steps or planned_updates(cfg)
    start = a.lr_decay_start * total
    frac = 1.0 if updates <= start else max(0.0, 1.0 - (updates - start) / (total - start))
    for optimizer, base in ((learner.actor_optimizer, a.actor_lr),
                            (learner.critic_optimizer, a.critic_lr),
                            (learner.alpha_optimizer, a.alpha_lr)):  # fmt: skip
        optimizer.learning_rate.assign(base * frac)


def checkpoint_root(cfg: ExperimentConfig) -> Path:
    """Where a run's checkpoints live (``<root>/<run_id>``)."""
    configured = cfg.training.checkpoint_dir
    return Path(configured) if configured else DEFAULT_CHECKPOINT_ROOT


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


def validate(cfg: ExperimentConfig, policy: Policy, paths: int) -> EpisodeBatch:
    """Episodes of ``policy`` on the validation seeds.

    These seeds are not the evaluation seeds of ``experiments.evaluate``: choosing the best
    policy on them does not bias the reported figures.
    """
    env = make_vector_env(cfg.market, paths)
    return rollout(env, policy, stream_seed(cfg.seed, "validation"))


def copy_weights(source: tf.Module, target: tf.Module) -> None:
    for dst, src in zip(target.trainable_variables, source.trainable_variables, strict=True):
        dst.assign(src)


def train(cfg: ExperimentConfig, run: Tracker, resume: bool, console: Console) -> int:
    t = cfg.training
    n = t.num_envs
    env = make_vector_env(training_market(cfg), n, "same_step")
    pipeline = make_pipeline(cfg)
    learner = make_learner(cfg, pipeline.dim)
    replay = ReplayBuffer(t.replay_capacity, pipeline.dim, 2, seed=stream_seed(cfg.seed, "replay"))
    ckpt_dir = checkpoint_root(cfg) / run.run_id
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    best_actor = SquashedGaussianActor(pipeline.dim, 2, cfg.agent.hidden_sizes, name="best_actor")
    copy_weights(learner.policy_actor, best_actor)
    checkpoints = Checkpoints(ckpt_dir, learner, pipeline, best_actor)
    h_opt = optimal_value(cfg.market)  # None: no known optimum (order book, replay)
    optimum = optimal_policy(cfg.market, env.action_map)
    # The optimum's episodes on the validation seeds and its exact mean: the control variate
    # of the ratio.
    optimum_expected = optimum_mean(cfg.market, optimum)
    optimum_batch = (
        validate(cfg, optimum, t.eval_paths)
        if optimum is not None and optimum_expected is not None
        else None
    )
    if h_opt is not None:
        run.log_metrics({"train/optimal_value": h_opt})

    loop = LoopState(episode_return=np.zeros(n), next_eval=t.eval_every,
                     next_checkpoint=t.checkpoint_every)  # fmt: skip
    warmup_rng = np.random.default_rng(stream_seed(cfg.seed, "training_env") + 1)
    obs: dict[str, np.ndarray]
    obs, _ = env.reset(seed=stream_seed(cfg.seed, "training_env"))
    if resume:
        number = checkpoints.latest()
        if number is None:
            raise FileNotFoundError(f"no complete checkpoint in {ckpt_dir}")
        state = checkpoints.restore(number)
        replay.load_state_dict(state["replay"])
        env.load_state_dict(state["env"])
        loop = state["loop"]
        warmup_rng.bit_generator.state = loop.warmup_rng
        obs = env.observe()
        console.print(f"resumed run {run.run_id} from its checkpoint at {number:,} transitions")

    def save_checkpoint() -> None:
        loop.warmup_rng = dict(warmup_rng.bit_generator.state)
        checkpoints.save(loop.env_steps, {"replay": replay.state_dict(),
                                          "env": env.state_dict(), "loop": loop})  # fmt: skip

    # One compiled featurizer: eager TF ops cost ~1 ms per call at this size.
    raw_features = tf.function(pipeline.raw, input_signature=[pipeline.input_spec])

    def featurize(o: dict[str, np.ndarray]) -> np.ndarray:
        return raw_features({k: o[k] for k in pipeline.observation_keys}).numpy()

    features = featurize(obs)
    bar = progress_bar(total=t.total_steps, initial=loop.env_steps, unit="steps", desc="SAC")
    start, start_steps, start_updates = time.perf_counter(), loop.env_steps, loop.updates
    deadline = start + 60 * t.max_minutes if t.max_minutes else None
    stats: dict[str, float] = {}
    while loop.env_steps < t.total_steps:
        # ---- act and step the markets
        if loop.env_steps < t.warmup_steps:
            action = warmup_rng.uniform(-1.0, 1.0, (n, 2)).astype(np.float32)
        elif cfg.features.normalize:
            action = learner.act(pipeline.standardize(features).numpy(), deterministic=False)
        else:
            action = learner.act(features, deterministic=False)
        next_obs, reward, terminated, truncated, info = env.step(action)
        # Same-step autoreset: next_obs of an ended market is already the reset one; the
        # transition must store the true last observation (info["final_obs"]).
        next_features = featurize(next_obs)
        last_features = next_features
        if "final_obs" in info:
            done = info["_final_obs"][:, None]
            last_features = np.where(done, featurize(info["final_obs"]), next_features)
        replay.add_batch(features, action, reward * cfg.agent.reward_scale, last_features,
                         terminated, truncated)  # fmt: skip
        pipeline.update(obs)
        features = next_features
        obs = next_obs
        loop.env_steps += n
        loop.episode_return += reward
        ended = terminated | truncated
        if ended.any():
            loop.episodes += int(ended.sum())
            run.log_metrics(
                {"train/episode_reward": float(loop.episode_return[ended].mean())},
                step=loop.env_steps,
            )
            loop.episode_return[ended] = 0.0

        # ---- learn
        if loop.env_steps >= t.warmup_steps and len(replay) >= cfg.agent.batch_size:
            for _ in range(t.updates_per_step):
                batch = replay.sample(cfg.agent.batch_size)
                if cfg.features.normalize:
                    batch = batch._replace(
                        obs=pipeline.standardize(batch.obs).numpy(),
                        next_obs=pipeline.standardize(batch.next_obs).numpy(),
                    )
                try:
                    out = learner.train_step(batch)
                except tf.errors.InvalidArgumentError as exc:
                    raise NumericsError(
                        f"a SAC loss became NaN or inf at update {loop.updates + 1} "
                        f"({loop.env_steps:,} transitions): {exc.message.splitlines()[0]}"
                    ) from None
                loop.updates += 1
                if cfg.agent.lr_decay:
                    set_learning_rates(learner, cfg, loop.updates)
            stats = {f"train/{k}": float(v) for k, v in out.items()}

        # ---- report, evaluate, checkpoint
        if loop.env_steps >= loop.next_eval or loop.env_steps >= t.total_steps:
            loop.next_eval += t.eval_every
            elapsed = time.perf_counter() - start
            episodes = validate(cfg, SACPolicy(learner, pipeline), t.eval_paths)
            rewards = episodes.reward
            mean, se = float(rewards.mean()), float(rewards.std(ddof=1) / np.sqrt(rewards.size))
            if mean > loop.best_eval:
                loop.best_eval, loop.best_at = mean, loop.env_steps
                copy_weights(learner.policy_actor, best_actor)
            ratio = (
                optimality(episodes, h_opt, optimum_batch, optimum_expected)
                if h_opt is not None
                else {}
            )
            # noise-free J / h of the current policy, a diagnostic only: selection above uses
            # the simulated validation episodes, as in a market without an exact model
            exact = exact_ratios(cfg.market, {"sac": SACPolicy(learner, pipeline)},
                                 env.action_map)  # fmt: skip
            run.log_metrics(stats | {
                "train/eval_reward_mean": mean, "train/eval_reward_stderr": se,
                **{f"train/{k}": v for k, v in ratio.items()},
                **({"train/exact_ratio": exact["sac"]} if exact else {}),
                "train/updates_per_s": (loop.updates - start_updates) / elapsed,
                "train/env_steps_per_s": (loop.env_steps - start_steps) / elapsed,
                "train/wall_seconds": elapsed, "train/best_eval_reward": loop.best_eval,
            }, step=loop.env_steps)  # fmt: skip
            shown = f"{ratio['optimality_ratio']:.3f}" if ratio else "-"
            bar.set_postfix(eval=f"{mean:.3f}", ratio=shown,
                            alpha=f"{stats.get('train/alpha', float('nan')):.3g}")  # fmt: skip
        if loop.env_steps >= loop.next_checkpoint:
            loop.next_checkpoint += t.checkpoint_every
            save_checkpoint()
        bar.update(n)
        if deadline is not None and time.perf_counter() > deadline:
            console.print(f"max_minutes reached at {loop.env_steps:,} transitions")
            break
    bar.close()

    save_checkpoint()
    run.log_artifacts(ckpt_dir, "checkpoints")
    with tempfile.TemporaryDirectory() as tmp:
        exported = best_actor if t.keep_best else learner.policy_actor
        export_policy(exported, pipeline, Path(tmp) / "sac_policy")
        run.log_artifacts(Path(tmp) / "sac_policy", "model/sac_policy")
    elapsed = time.perf_counter() - start
    run.set_tags({"mmrl.exported_policy": f"best at {loop.best_at} transitions"
                  if t.keep_best else "last"})  # fmt: skip
    console.print(
        f"trained {loop.env_steps:,} transitions, {loop.updates:,} updates in {elapsed:.0f} s; "
        f"SavedModel ({'best validation' if t.keep_best else 'last'} policy, "
        f"{loop.best_at:,} transitions) logged to run {run.run_id} (model/sac_policy)"
    )
    return 0


def run_training(
    config: str, overrides: list[str], resume: str | None = None
) -> tuple[int, str | None]:
    """Train from a config file (``resume``: continue that run). Returns (exit code, run id)."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        cfg = load_config(config, overrides)
        training_market(cfg)  # refuses what the market cannot do, before any run starts
        tracker = job_tracker(cfg, config, "train", run_id=resume)
    except (ConfigError, TrackingError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return EXIT_CONFIG, None
    seed_everything(cfg.seed)
    tf.random.set_seed(stream_seed(cfg.seed, "agent"))
    # Kernels that could reduce in a varying order run their deterministic variant (a few
    # percent on this CPU), so a seed and config give the same policy from run to run.
    tf.config.experimental.enable_op_determinism()

    with tracker as run:
        if resume:
            ckpt_dir = checkpoint_root(cfg) / run.run_id
            if not ckpt_dir.exists():  # another machine: fetch the logged checkpoint
                staging = checkpoint_root(cfg) / f".download-{run.run_id}"
                local = download_artifacts(run.run_id, "checkpoints", staging, cfg.tracking.uri)
                shutil.move(local, ckpt_dir)
                shutil.rmtree(staging, ignore_errors=True)
        else:
            run.log_params(cfg.model_dump(mode="json"))
            run.log_text(to_yaml(cfg), "config/resolved.yaml")
        try:
            return train(cfg, run, resume=bool(resume), console=console), run.run_id
        except NumericsError as exc:
            console.print(f"[red]error:[/red] {exc}; the last good checkpoint is kept in "
                          f"{checkpoint_root(cfg) / run.run_id}", highlight=False)  # fmt: skip
            run.set_tag("mmrl.error", str(exc))
            return EXIT_NUMERICS, run.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_ID", help="continue this run from its checkpoint")
    args = parser.parse_args(argv)
    return run_training(args.config, args.overrides, args.resume)[0]


if __name__ == "__main__":
    sys.exit(main())
