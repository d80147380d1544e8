"""Train a SAC market maker from a config, with checkpoints, resume and MLflow logging.

    python -m experiments.train --config configs/cj_sac.yaml [--set training.total_steps=1e5]
    python -m experiments.train --config configs/cj_sac.yaml --resume RUN_ID

Reads top to bottom: config and tracking preflight, seeding, market, features, learner and
replay, (resume), the loop, the export. Counts are environment transitions (``num_envs``
per batched step). Checkpoints hold everything the future depends on: networks,
optimizers, temperature, normalization, replay buffer, the market's state and every
generator's state, so a resumed run continues as the uninterrupted one would have.

Nothing is lost to an interruption: a checkpoint is written every ``checkpoint_every``
transitions and every ``checkpoint_minutes``, and each is also logged to the run's artifacts
(``checkpoints/latest``), so ``--resume RUN_ID`` works from the tracking store alone. Ctrl-C
(SIGINT) and SIGTERM stop the loop at the end of its step, write a checkpoint and mark the run
KILLED; the command that resumes the run is printed when training starts and when it stops.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

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
from experiments.checkpoints import (
    PUBLISHED,
    Checkpoints,
    Interrupted,
    LoopState,
    StopSignals,
)
from experiments.config import (
    ConfigError,
    add_config_arguments,
    config_differences,
    job_tracker,
    load_config,
    make_vector_env,
    to_yaml,
)
from experiments.progress import progress as progress_bar
from experiments.sac_model import export_policy
from experiments.seeding import seed_everything, stream_seed
from features import FeaturePipeline
from tracking import (
    PROJECT_ROOT,
    Tracker,
    TrackingError,
    TrackingUnavailableError,
    download_artifacts,
    load_run,
    metric_history,
)

DEFAULT_CHECKPOINT_ROOT = PROJECT_ROOT / "outputs" / "checkpoints"
RESUMABLE_CHANGES = ("training.total_steps", "training.max_minutes", "training.checkpoint_",
                     "training.eval_paths", "evaluation.", "tracking.")  # fmt: skip
"""Config keys (prefixes) a resume may change; any other difference from the run is refused."""
EXIT_CONFIG, EXIT_NUMERICS, EXIT_STORE_DOWN = 2, 3, 4


class NumericsError(RuntimeError):
    """A SAC loss became NaN or inf."""


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


def train(
    cfg: ExperimentConfig,
    run: Tracker,
    resume: bool,
    console: Console,
    stop: StopSignals | None = None,
    resume_command: str = "",
    logged_upto: int = -1,
) -> int:
    """The training loop of one run (``resume``: continue it from its newest checkpoint).

    :param stop: the signals that end the loop early (with a checkpoint, then
        :class:`Interrupted`); None: none do.
    :param resume_command: the command line that resumes this run, printed when it stops early.
    :param logged_upto: the largest step at which a resumed run already logged metrics: the
        steps up to it are replayed from the checkpoint with the same numbers and not logged
        twice.
    """
    t = cfg.training
    stop = stop or StopSignals()
    store_down: TrackingUnavailableError | None = None  # the store stopped answering

    def log_metrics(metrics: dict[str, float], step: int) -> None:
        nonlocal store_down
        if step > logged_upto and store_down is None:
            try:
                run.log_metrics(metrics, step=step)
            except TrackingUnavailableError as exc:  # checkpoint locally, then stop
                store_down = exc

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
        log_metrics({"train/optimal_value": h_opt}, step=0)

    loop = LoopState(episode_return=np.zeros(n), next_eval=t.eval_every,
                     next_checkpoint=t.checkpoint_every)  # fmt: skip
    warmup_rng = np.random.default_rng(stream_seed(cfg.seed, "training_env") + 1)
    obs: dict[str, np.ndarray]
    obs, _ = env.reset(seed=stream_seed(cfg.seed, "training_env"))
    if resume:
        published = ckpt_dir / ".published"  # fetched from the store by resume_preflight
        if checkpoints.latest() is None and published.is_dir():
            checkpoints.adopt_published(published)
        shutil.rmtree(published, ignore_errors=True)
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

    last_checkpoint = time.perf_counter()  # of this process

    def save_checkpoint() -> None:
        nonlocal last_checkpoint, store_down
        loop.warmup_rng = dict(warmup_rng.bit_generator.state)
        loop.elapsed_s = elapsed_before + time.perf_counter() - start
        checkpoints.save(loop.env_steps, {"replay": replay.state_dict(),
                                          "env": env.state_dict(), "loop": loop})  # fmt: skip
        last_checkpoint = time.perf_counter()
        if store_down is None:
            try:
                checkpoints.publish(loop.env_steps, run)
            except TrackingUnavailableError as exc:
                store_down = exc

    # One compiled featurizer: eager TF ops cost ~1 ms per call at this size.
    raw_features = tf.function(pipeline.raw, input_signature=[pipeline.input_spec])

    def featurize(o: dict[str, np.ndarray]) -> np.ndarray:
        return raw_features({k: o[k] for k in pipeline.observation_keys}).numpy()

    features = featurize(obs)
    bar = progress_bar(total=t.total_steps, initial=loop.env_steps, unit="steps", desc="SAC")
    start, start_steps, start_updates = time.perf_counter(), loop.env_steps, loop.updates
    elapsed_before = loop.elapsed_s  # of the run before this resume
    deadline = start + 60 * t.max_minutes - elapsed_before if t.max_minutes else None
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
            log_metrics(
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
            log_metrics(stats | {
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
        elif time.perf_counter() - last_checkpoint > 60 * t.checkpoint_minutes:
            save_checkpoint()
        bar.update(n)
        if stop.received is not None or store_down is not None:
            break
        if deadline is not None and time.perf_counter() > deadline:
            console.print(f"max_minutes reached at {loop.env_steps:,} transitions")
            break
    bar.close()

    save_checkpoint()
    if store_down is not None:
        raise store_down  # after the local checkpoint; run_training says how to resume
    if stop.received is not None:
        name = signal.Signals(stop.received).name
        console.print(f"{name}: stopped at {loop.env_steps:,} transitions with a checkpoint; "
                      f"resume with:\n  {resume_command}", highlight=False)  # fmt: skip
        raise Interrupted(stop.received)
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


def resume_command(config: str, overrides: list[str], run_id: str) -> str:
    """The command line that resumes ``run_id`` with the same config and overrides."""
    sets = " ".join(f"--set {shlex.quote(o)}" for o in overrides)
    return " ".join(filter(None, ["python -m experiments.train --config", shlex.quote(str(config)),
                                  sets, f"--resume {run_id}"]))  # fmt: skip


def resume_preflight(cfg: ExperimentConfig, run_id: str) -> int:
    """Check, before the run is touched, that ``run_id`` can be resumed with ``cfg``; fetch its
    checkpoint from the store when this machine has none.

    :returns: the largest step at which the run logged a training metric (see :func:`train`).
    :raises ConfigError: no such run, not a training run, a config that differs from the run's
        in a key a resume may not change (named), or no checkpoint anywhere.
    """
    uri = cfg.tracking.uri
    try:
        record = load_run(run_id, uri)
    except TrackingError as exc:
        raise ConfigError(f"--resume {run_id}: cannot read that run: {exc}") from None
    if record.tags.get("mmrl.job") != "train":
        raise ConfigError(f"--resume {run_id}: not a training run (job "
                          f"{record.tags.get('mmrl.job', 'unknown')!r})")  # fmt: skip
    changed = config_differences(cfg, record.params, ignore=RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"--resume {run_id}: the config differs from the run's in "
                          f"{len(changed)} key(s): {'; '.join(changed[:8])}")  # fmt: skip
    ckpt_dir = checkpoint_root(cfg) / run_id
    if not any(ckpt_dir.glob("state-*.pkl")):  # another machine: the checkpoint in the store
        staging = ckpt_dir / ".published"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            download_artifacts(run_id, PUBLISHED, staging.parent / ".download", uri)
        except TrackingError:
            raise ConfigError(f"--resume {run_id}: no checkpoint in {ckpt_dir} nor in the run's "
                              f"artifacts ({PUBLISHED})") from None  # fmt: skip
        shutil.move(staging.parent / ".download" / "latest", staging)
        shutil.rmtree(staging.parent / ".download", ignore_errors=True)
    steps = [step for key in record.metrics if key.startswith("train/")
             for step, _ in metric_history(run_id, key, uri)]  # fmt: skip
    return max(steps, default=-1)


def run_training(
    config: str, overrides: list[str], resume: str | None = None
) -> tuple[int, str | None]:
    """Train from a config file (``resume``: continue that run). Returns (exit code, run id).

    Exit codes: 0 done, 2 a config or store error (before any work), 3 a NaN loss, 4 the store
    stopped answering (checkpointed locally), 128 + the signal's number when SIGINT (130) or
    SIGTERM (143) stopped it with a checkpoint.
    """
    console = Console(stderr=True, soft_wrap=True)
    try:
        cfg = load_config(config, overrides)
        training_market(cfg)  # refuses what the market cannot do, before any run starts
        logged_upto = resume_preflight(cfg, resume) if resume else -1
        tracker = job_tracker(cfg, config, "train", run_id=resume)
    except (ConfigError, TrackingError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return EXIT_CONFIG, None
    seed_everything(cfg.seed)
    tf.random.set_seed(stream_seed(cfg.seed, "agent"))
    # Kernels that could reduce in a varying order run their deterministic variant (a few
    # percent on this CPU), so a seed and config give the same policy from run to run.
    tf.config.experimental.enable_op_determinism()

    run_id = None
    try:
        with StopSignals() as stop, tracker as run:
            run_id = run.run_id
            command = resume_command(config, overrides, run.run_id)
            run.resume_command = command  # named by the tracker's error if the store goes down
            console.print(f"run {run.run_id}; if it is interrupted, resume with:\n  {command}",
                          highlight=False)  # fmt: skip
            if not resume:
                run.log_params(cfg.model_dump(mode="json"))
                run.log_text(to_yaml(cfg), "config/resolved.yaml")
            try:
                return train(cfg, run, bool(resume), console, stop, command, logged_upto), run_id
            except NumericsError as exc:
                console.print(f"[red]error:[/red] {exc}; the last good checkpoint is kept in "
                              f"{checkpoint_root(cfg) / run.run_id}", highlight=False)  # fmt: skip
                run.set_tag("mmrl.error", str(exc))
                return EXIT_NUMERICS, run.run_id
    except Interrupted as exc:  # the run is marked KILLED, its checkpoint logged
        return 128 + exc.signum, run_id
    except TrackingUnavailableError as exc:  # the run stays RUNNING in the store
        console.print(f"[red]error:[/red] {exc}\nThe checkpoint is kept in "
                      f"{checkpoint_root(cfg) / str(run_id)}; once the store answers, resume "
                      f"with:\n  {resume_command(config, overrides, str(run_id))}",
                      highlight=False)  # fmt: skip
        return EXIT_STORE_DOWN, run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_ID", help="continue this run from its checkpoint")
    args = parser.parse_args(argv)
    return run_training(args.config, args.overrides, args.resume)[0]


if __name__ == "__main__":
    sys.exit(main())
