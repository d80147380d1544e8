"""The analytic (Avellaneda-Stoikov) market: one batched core, two gymnasium faces.

Model (Avellaneda & Stoikov 2008, Quantitative Finance 8(3), section 2; DESIGN.md section 4):

- the mid follows ``dS = drift dt + sigma dW``, stepped with Gaussian increments or with
  binary increments ``+-sigma sqrt(dt)`` (the paper's simulation, section 3);
- the agent keeps one unit bid at ``S - delta_b`` and one unit ask at ``S + delta_a``;
  in a step of length ``dt`` each is filled with probability ``A exp(-k delta) dt`` clipped
  to 1 (the paper) or ``1 - exp(-A exp(-k delta) dt)`` (exact for Poisson arrivals);
- a quote that would take ``|q|`` beyond ``q_max`` is not sent.

Within a step: quotes rest around ``S_t``, fills happen at the quoted prices, then the mid
moves to ``S_{t+dt}``. The random numbers a step draws do not depend on the actions, so
two policies run from the same seed see the same mid path and the same fill uniforms
(common random numbers).

Reward (all terms reported in ``info``)::

    reward = dPnL - phi * (q_t^2 + q_{t+dt}^2) / 2 * dt - [end] alpha * q_T^2

``dPnL`` is the change of the mark-to-market value ``cash + q S``; the running penalty is
the trapezoidal rule for ``phi int q^2 dt`` (Cartea & Jaimungal 2015). The sum of an
episode's rewards is therefore ``X_T + q_T S_T - q_0 S_0 - phi int q^2 dt - alpha q_T^2``,
whose expectation under the Cartea-Jaimungal optimum is ``h(0, q_0)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numba
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from gymnasium.vector.vector_env import AutoresetMode

from configs.schema import AnalyticMarketConfig
from envs.layout import CASH, INVENTORY, MID, TIME_LEFT, DepthActionMap

# --------------------------------------------------------------------------------------
# Market components by role. Each owns its parameters and draws from its own generator.


class BrownianMidprice:
    """Mid increments ``drift dt + sigma sqrt(dt) Z``; ``Z`` Gaussian or a fair coin +-1.

    :param sigma: volatility (price units per sqrt(time unit)).
    :param drift: drift (price units per time unit).
    :param dt: step length (time units).
    :param increments: ``"gaussian"`` or ``"binary"``.
    """

    def __init__(self, sigma: float, drift: float, dt: float, increments: str) -> None:
        self.scale = sigma * np.sqrt(dt)
        self.shift = drift * dt
        self.binary = increments == "binary"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` mid increments (price units)."""
        if self.binary:
            z = 2.0 * rng.integers(0, 2, size=n).astype(np.float64) - 1.0
        else:
            z = rng.standard_normal(n)
        z *= self.scale
        z += self.shift
        return z


class ExponentialFillCurve:
    """Fill intensity ``lambda(delta) = A exp(-k delta)`` (fills per time unit).

    The per-step fill probability is computed in the step kernel from these fields:
    ``lambda dt`` clipped to 1 (``clipped``) or ``1 - exp(-lambda dt)`` (``exact``).
    Fill decisions compare it with uniforms drawn here, two per env per step.
    """

    def __init__(self, A: float, k: float, mode: str) -> None:
        self.A = A
        self.k = k
        self.exact = mode == "exact"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 2)`` uniforms on [0, 1): bid and ask fill decisions."""
        return rng.random((n, 2))


# --------------------------------------------------------------------------------------
# The step kernel: one pass over the N books, no temporaries.


@numba.njit(cache=True, nogil=True)
def _step_kernel(
    action, dmid, uniforms, mid, inv, cash, peak, step, active,
    depth_min, half_width, A, k, exact, dt, n_steps, q_max, phi, alpha, max_drawdown, T,
    reward, terminated, fill_bid, fill_ask, dpnl, penalty, bid_depth, ask_depth,
    obs_inv, obs_time, obs_mid, obs_cash,
):  # fmt: skip
    n = mid.shape[0]
    for i in range(n):
        if not active[i]:
            reward[i] = 0.0
            terminated[i] = False
            fill_bid[i] = False
            fill_ask[i] = False
            dpnl[i] = 0.0
            penalty[i] = 0.0
            bid_depth[i] = np.nan
            ask_depth[i] = np.nan
        else:
            a0 = min(max(action[i, 0], -1.0), 1.0)
            a1 = min(max(action[i, 1], -1.0), 1.0)
            db = depth_min + (a0 + 1.0) * half_width
            da = depth_min + (a1 + 1.0) * half_width
            s = mid[i]
            q0 = inv[i]
            value0 = cash[i] + q0 * s
            q = q0
            lam_b = A * np.exp(-k * db) * dt
            lam_a = A * np.exp(-k * da) * dt
            if exact:
                p_b = -np.expm1(-lam_b)
                p_a = -np.expm1(-lam_a)
            else:
                p_b = min(lam_b, 1.0)
                p_a = min(lam_a, 1.0)
            fb = q0 < q_max and uniforms[i, 0] < p_b
            fa = q0 > -q_max and uniforms[i, 1] < p_a
            c = cash[i]
            if fb:
                q += 1
                c -= s - db
            if fa:
                q -= 1
                c += s + da
            s_new = s + dmid[i]
            t = step[i] + 1
            value1 = c + q * s_new
            pen = phi * 0.5 * (q0 * q0 + q * q) * dt
            done = t >= n_steps
            if done:
                pen += alpha * q * q
            if value1 > peak[i]:
                peak[i] = value1
            if max_drawdown > 0.0 and peak[i] - value1 >= max_drawdown:
                done = True
            mid[i] = s_new
            inv[i] = q
            cash[i] = c
            step[i] = t
            dpnl[i] = value1 - value0
            penalty[i] = pen
            reward[i] = value1 - value0 - pen
            terminated[i] = done
            fill_bid[i] = fb
            fill_ask[i] = fa
            bid_depth[i] = db
            ask_depth[i] = da
        obs_inv[i, 0] = inv[i]
        obs_time[i, 0] = T - step[i] * dt
        obs_mid[i, 0] = mid[i]
        obs_cash[i, 0] = cash[i]


# --------------------------------------------------------------------------------------


class AnalyticMarketCore:
    """State and dynamics of ``N`` independent analytic markets, as arrays of shape ``(N,)``.

    State layout (all float64 unless said; units in brackets):
        ``mid`` [price], ``inventory`` [lots, float64 holding integers], ``cash`` [currency],
        ``peak`` [currency, running maximum of the mark-to-market value, for the kill switch],
        ``step`` [int64, decisions taken in the episode].

    Random streams: :meth:`seed` spawns one generator per component from a
    :class:`numpy.random.SeedSequence` (the mid and the fills never share a stream).

    :param config: validated market parameters.
    :param num_envs: number of markets ``N``.
    """

    def __init__(self, config: AnalyticMarketConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = num_envs
        self.action_map = DepthActionMap(config.depth_min, config.depth_max)
        self.midprice = BrownianMidprice(config.sigma, config.drift, config.dt, config.increments)
        self.fills = ExponentialFillCurve(config.A, config.k, config.fill_probability)
        self.mid = np.full(num_envs, config.s0)
        self.inventory = np.full(num_envs, float(config.q0))
        self.cash = np.zeros(num_envs)
        self.peak = np.zeros(num_envs)
        self.step_count = np.zeros(num_envs, np.int64)
        self._all = np.ones(num_envs, np.bool_)
        self.seed(None)

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Re-create the component generators from ``seed`` (entropy when None)."""
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        mid_ss, fill_ss = ss.spawn(2)
        self.mid_rng = np.random.Generator(np.random.PCG64(mid_ss))
        self.fill_rng = np.random.Generator(np.random.PCG64(fill_ss))

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Put the markets selected by ``mask`` (all when None) back at their initial state."""
        c = self.config
        sel = slice(None) if mask is None else mask
        self.mid[sel] = c.s0
        self.inventory[sel] = c.q0
        self.cash[sel] = 0.0
        self.peak[sel] = c.q0 * c.s0
        self.step_count[sel] = 0

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation, float32 ``(N, 1)`` per key (fresh arrays)."""
        c = self.config
        return {
            INVENTORY: self.inventory.astype(np.float32).reshape(-1, 1),
            TIME_LEFT: (c.T - self.step_count * c.dt).astype(np.float32).reshape(-1, 1),
            MID: self.mid.astype(np.float32).reshape(-1, 1),
            CASH: self.cash.astype(np.float32).reshape(-1, 1),
        }

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance the markets selected by ``active`` (all when None) by one decision.

        :param action: ``(N, 2)`` normalized bid and ask actions in ``[-1, 1]`` (clipped).
        :returns: observation, reward ``(N,)``, terminated ``(N,)``, info arrays ``(N,)``.
        """
        c = self.config
        n = self.num_envs
        action = np.asarray(action)
        if action.shape != (n, 2):
            raise ValueError(f"action must have shape ({n}, 2), got {action.shape}")
        dmid = self.midprice.draw(self.mid_rng, n)
        uniforms = self.fills.draw(self.fill_rng, n)
        reward = np.empty(n)
        terminated = np.empty(n, np.bool_)
        fill_bid = np.empty(n, np.bool_)
        fill_ask = np.empty(n, np.bool_)
        dpnl = np.empty(n)
        penalty = np.empty(n)
        bid_depth = np.empty(n)
        ask_depth = np.empty(n)
        obs = {key: np.empty((n, 1), np.float32) for key in (INVENTORY, TIME_LEFT, MID, CASH)}
        _step_kernel(
            action, dmid, uniforms, self.mid, self.inventory, self.cash, self.peak,
            self.step_count, self._all if active is None else active,
            c.depth_min, 0.5 * (c.depth_max - c.depth_min), c.A, c.k,
            self.fills.exact, c.dt, c.n_steps, c.q_max, c.phi, c.alpha,
            c.max_drawdown or 0.0, c.T,
            reward, terminated, fill_bid, fill_ask, dpnl, penalty, bid_depth, ask_depth,
            obs[INVENTORY], obs[TIME_LEFT], obs[MID], obs[CASH],
        )  # fmt: skip
        info = {
            "fill_bid": fill_bid,
            "fill_ask": fill_ask,
            "dpnl": dpnl,
            "inventory_penalty": penalty,
            "bid_depth": bid_depth,
            "ask_depth": ask_depth,
        }
        return obs, reward, terminated, info

    def observation_space(self) -> spaces.Dict:
        """The single-market observation space."""
        c = self.config
        inf = np.float32(np.inf)
        return spaces.Dict(
            {
                INVENTORY: spaces.Box(-c.q_max, c.q_max, (1,), np.float32),
                TIME_LEFT: spaces.Box(0.0, c.T, (1,), np.float32),
                MID: spaces.Box(-inf, inf, (1,), np.float32),
                CASH: spaces.Box(-inf, inf, (1,), np.float32),
            }
        )


class AnalyticMarketEnv(gymnasium.Env):
    """Market making in the Avellaneda-Stoikov model (one market).

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: bid and ask depths, mapped affinely onto
    ``[depth_min, depth_max]`` price units (``self.action_map``).

    ## Observation Space
    ``Dict`` of float32 ``(1,)`` boxes: ``inventory`` (lots), ``time_left`` (time units),
    ``mid`` (price), ``cash`` (currency). See :mod:`envs.layout`.

    ## Rewards
    Change of mark-to-market value minus the running inventory penalty
    ``phi (q_t^2 + q_{t+1}^2)/2 dt``, minus ``alpha q_T^2`` at the end. ``info`` reports
    ``dpnl``, ``inventory_penalty``, fills and the depths actually quoted.

    ## Episode End
    ``terminated`` after ``n_steps`` decisions (time is part of the state), or when the
    kill switch fires (``max_drawdown``). Never truncated.

    ## Arguments
    Keyword parameters of :class:`configs.schema.AnalyticMarketConfig`, or ``config=``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: AnalyticMarketConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        self.config = config or AnalyticMarketConfig(**params)
        self.core = AnalyticMarketCore(self.config, 1)
        self.action_map = self.core.action_map
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = self.core.observation_space()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        elif not getattr(self, "_seeded", False):
            # First reset without a seed: derive the streams from gymnasium's generator.
            self.core.seed(int(self.np_random.integers(2**63)))
        self._seeded = True
        self.core.reset_state()
        self._done = False
        return _unbatch(self.core.observe()), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if getattr(self, "_done", True):
            raise gymnasium.error.ResetNeeded(
                "step() called before reset() or after the episode ended; call reset() first"
            )
        obs, reward, terminated, info = self.core.step(np.reshape(action, (1, 2)))
        self._done = bool(terminated[0])
        return (
            _unbatch(obs),
            float(reward[0]),
            bool(terminated[0]),
            False,
            {key: value[0].item() for key, value in info.items()},
        )


def _unbatch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value[0] for key, value in obs.items()}


class AnalyticMarketVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` analytic markets stepped together in one kernel call.

    The same model, spaces and rewards as :class:`AnalyticMarketEnv`, with a leading batch
    axis. Autoreset: ``next_step`` (gymnasium's default: the step after an episode ends
    resets that market and returns reward 0) or ``same_step`` (the ending step returns
    the reset observation; the last observation is in ``info["final_obs"]``, a dict of
    ``(N, 1)`` arrays valid where ``info["_final_obs"]`` is True).

    :param num_envs: number of markets.
    :param autoreset_mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
    """

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        config: AnalyticMarketConfig | None = None,
        **params: Any,
    ) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        mode = AutoresetMode(_mode_value(autoreset_mode))
        if mode is AutoresetMode.DISABLED:
            raise ValueError(
                "autoreset_mode 'disabled' is not supported; use next_step or same_step"
            )
        self.config = config or AnalyticMarketConfig(**params)
        self.core = AnalyticMarketCore(self.config, num_envs)
        self.action_map = self.core.action_map
        self.num_envs = num_envs
        self.metadata = {"render_modes": [], "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.single_observation_space = self.core.observation_space()
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._needs_reset = np.zeros(num_envs, np.bool_)
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        elif not self._seeded:
            self.core.seed(int(self.np_random.integers(2**63)))
        self._seeded = True
        self.core.reset_state()
        self._needs_reset[:] = False
        return self.core.observe(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self.autoreset_mode is AutoresetMode.NEXT_STEP and self._needs_reset.any():
            restart = self._needs_reset.copy()
            self.core.reset_state(restart)
            obs, reward, terminated, info = self.core.step(actions, active=~restart)
        else:
            obs, reward, terminated, info = self.core.step(actions)
        truncated = np.zeros(self.num_envs, np.bool_)
        if self.autoreset_mode is AutoresetMode.SAME_STEP and terminated.any():
            info["final_obs"] = obs
            info["_final_obs"] = terminated.copy()
            self.core.reset_state(terminated)
            obs = self.core.observe()
        self._needs_reset = terminated.copy()
        return obs, reward, terminated, truncated, info


def _mode_value(mode: str | AutoresetMode) -> str:
    if isinstance(mode, AutoresetMode):
        return mode.value
    names = {"next_step": "NextStep", "same_step": "SameStep", "disabled": "Disabled"}
    if mode in names:
        return names[mode]
    if mode in names.values():
        return mode
    raise ValueError(f"autoreset_mode must be one of {sorted(names)}, got {mode!r}")
