"""The analytic (Avellaneda-Stoikov) market: one batched core, two gymnasium faces.

Model (Avellaneda & Stoikov 2008, Quantitative Finance 8(3), section 2;
docs/markets.md#analytic-market):

- the mid follows ``dS = drift dt + sigma dW``, stepped with Gaussian increments or with
  binary increments ``+-sigma sqrt(dt)`` (the paper's simulation, section 3);
- the agent keeps one unit bid at ``S - delta_b`` and one unit ask at ``S + delta_a``;
  in a step of length ``dt`` each is filled with probability ``A exp(-k delta) dt`` clipped
  to 1 (the paper) or ``1 - exp(-A exp(-k delta) dt)`` (exact for Poisson arrivals);
- a quote that would take ``|q|`` beyond ``q_max`` is not sent;
- a stress scenario (``config.stress``, :class:`configs.schema.StressScenario`) changes
  ``sigma``, ``drift``, ``A`` (per side) and ``k`` and adds a jump to the mid inside its
  time window (:func:`stress_schedule`); the random numbers drawn stay the same, so a
  stressed run and the unstressed one from the same seed are paired.

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

from typing import Any

import numba
import numpy as np
from gymnasium import spaces
from gymnasium.vector.vector_env import AutoresetMode

from configs.schema import AnalyticMarketConfig, StressScenario
from envs.batched import BatchedMarketEnv, SingleMarketEnv
from envs.layout import CASH, INVENTORY, MID, TIME_LEFT, DepthActionMap, checked_actions

# --------------------------------------------------------------------------------------
# Market components by role. Each owns its parameters and draws from its own generator.


class BrownianMidprice:
    """Mid increments ``drift dt + sigma sqrt(dt) Z``; ``Z`` Gaussian or a fair coin +-1.

    :meth:`draw` gives the standard shocks ``Z``; the step kernel applies
    ``shift + scale * Z`` with the fields below.

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
        """``n`` standard shocks: N(0, 1) draws, or 0/1 coin flips mapped to -1/+1 later."""
        if self.binary:
            return rng.integers(0, 2, size=n).astype(np.float64)
        return rng.standard_normal(n)


class ExponentialFillCurve:
    """Fill intensity ``lambda(delta) = A exp(-k delta)`` (fills per time unit).

    The per-step fill probability is computed in the step kernel from these fields:
    ``lambda dt`` clipped to 1 (``clipped``) or ``1 - exp(-lambda dt)`` (``exact``).
    Fill decisions compare it with uniforms drawn here, two per market per step.
    """

    def __init__(self, A: float, k: float, mode: str) -> None:
        self.A = A
        self.k = k
        self.exact = mode == "exact"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 2)`` uniforms on [0, 1): bid and ask fill decisions."""
        return rng.random((n, 2))


# --------------------------------------------------------------------------------------
# The step kernel: one pass over the N markets. Arguments are packed into a few arrays
# (named indices below) because a kernel call costs per argument, which dominates N = 1.

# rows of the float64 state array (N markets per row)
MID_ROW, INV_ROW, CASH_ROW, PEAK_ROW = range(4)
# entries of the float64 parameter vector; with a stress scenario (P_STRESS = 1) the
# (len(STRESS_ROWS), n_steps) schedule follows them, row-major, from N_PARAMS on
(P_DEPTH_MIN, P_HALF_WIDTH, P_A, P_K, P_EXACT, P_DT, P_N_STEPS, P_Q_MAX, P_PHI, P_ALPHA,
 P_MAX_DRAWDOWN, P_T, P_MID_SCALE, P_MID_SHIFT, P_BINARY, P_STRESS) = range(16)  # fmt: skip
N_PARAMS = 16
# rows of the stress schedule (one column per step)
S_SIGMA, S_SHIFT, S_A_BID, S_A_ASK, S_K = range(5)
STRESS_ROWS = ("sigma_factor", "mid_shift", "A_bid_factor", "A_ask_factor", "k_factor")
STRESS_PERTURBATIONS = frozenset({"volatility", "fill_intensity", "fill_decay", "drift", "jump"})
"""The perturbations of :class:`configs.schema.StressPerturbations` this market applies."""
# rows of the float64 and bool outputs
REWARD_ROW, DPNL_ROW, PENALTY_ROW, BID_DEPTH_ROW, ASK_DEPTH_ROW = range(5)
TERMINATED_ROW, FILL_BID_ROW, FILL_ASK_ROW = range(3)
OBS_ROWS = (INVENTORY, TIME_LEFT, MID, CASH)


@numba.njit(cache=True, nogil=True)
def _step_kernel(action, shocks, uniforms, state, step, active, p, out, flags, obs):
    """Advance each active market by one decision; write outputs and the observation.

    :param action: (N, 2) normalized actions.   :param shocks: (N,) mid shocks.
    :param uniforms: (N, 2) fill uniforms.       :param state: (4, N) mid, inv, cash, peak.
    :param step: (N,) int64 decisions taken.     :param active: (N,) bool, markets to step.
    :param p: parameter vector (P_* indices).    :param out: (5, N) float64 outputs.
    :param flags: (3, N) bool outputs.           :param obs: (4, N, 1) float32 observation.
    """
    depth_min, half_width, A, k = p[P_DEPTH_MIN], p[P_HALF_WIDTH], p[P_A], p[P_K]
    exact, dt, n_steps, q_max = p[P_EXACT] > 0, p[P_DT], p[P_N_STEPS], p[P_Q_MAX]
    phi, alpha, max_drawdown, T = p[P_PHI], p[P_ALPHA], p[P_MAX_DRAWDOWN], p[P_T]
    scale, shift, binary = p[P_MID_SCALE], p[P_MID_SHIFT], p[P_BINARY] > 0
    stressed, ns = p[P_STRESS] > 0, int(n_steps)
    A_b, A_a, k_t, scale_t, shift_t = A, A, k, scale, shift
    for i in range(state.shape[1]):
        if not active[i]:
            out[REWARD_ROW, i] = 0.0
            out[DPNL_ROW, i] = 0.0
            out[PENALTY_ROW, i] = 0.0
            out[BID_DEPTH_ROW, i] = np.nan
            out[ASK_DEPTH_ROW, i] = np.nan
            flags[TERMINATED_ROW, i] = False
            flags[FILL_BID_ROW, i] = False
            flags[FILL_ASK_ROW, i] = False
        else:
            db = depth_min + (min(max(action[i, 0], -1.0), 1.0) + 1.0) * half_width
            da = depth_min + (min(max(action[i, 1], -1.0), 1.0) + 1.0) * half_width
            s = state[MID_ROW, i]
            q0 = state[INV_ROW, i]
            c = state[CASH_ROW, i]
            value0 = c + q0 * s
            if stressed:  # this step's column of the schedule
                col = N_PARAMS + step[i]
                scale_t = scale * p[col + S_SIGMA * ns]
                shift_t = shift + p[col + S_SHIFT * ns]
                A_b = A * p[col + S_A_BID * ns]
                A_a = A * p[col + S_A_ASK * ns]
                k_t = k * p[col + S_K * ns]
            lam_b = A_b * np.exp(-k_t * db) * dt
            lam_a = A_a * np.exp(-k_t * da) * dt
            if exact:
                p_b = -np.expm1(-lam_b)
                p_a = -np.expm1(-lam_a)
            else:
                p_b = min(lam_b, 1.0)
                p_a = min(lam_a, 1.0)
            fb = q0 < q_max and uniforms[i, 0] < p_b
            fa = q0 > -q_max and uniforms[i, 1] < p_a
            q = q0
            if fb:
                q += 1.0
                c -= s - db
            if fa:
                q -= 1.0
                c += s + da
            z = 2.0 * shocks[i] - 1.0 if binary else shocks[i]
            s_new = s + shift_t + scale_t * z
            t = step[i] + 1
            value1 = c + q * s_new
            pen = phi * 0.5 * (q0 * q0 + q * q) * dt
            done = t >= n_steps
            if done:
                pen += alpha * q * q
            peak = max(state[PEAK_ROW, i], value1)
            if max_drawdown > 0.0 and peak - value1 >= max_drawdown:
                done = True
            state[MID_ROW, i] = s_new
            state[INV_ROW, i] = q
            state[CASH_ROW, i] = c
            state[PEAK_ROW, i] = peak
            step[i] = t
            out[REWARD_ROW, i] = value1 - value0 - pen
            out[DPNL_ROW, i] = value1 - value0
            out[PENALTY_ROW, i] = pen
            out[BID_DEPTH_ROW, i] = db
            out[ASK_DEPTH_ROW, i] = da
            flags[TERMINATED_ROW, i] = done
            flags[FILL_BID_ROW, i] = fb
            flags[FILL_ASK_ROW, i] = fa
        obs[0, i, 0] = state[INV_ROW, i]
        obs[1, i, 0] = T - step[i] * dt
        obs[2, i, 0] = state[MID_ROW, i]
        obs[3, i, 0] = state[CASH_ROW, i]


def stress_schedule(scenario: StressScenario, config: AnalyticMarketConfig) -> np.ndarray:
    """Per-step parameters of a scenario: a ``(len(STRESS_ROWS), n_steps)`` float64 array.

    Column ``t`` applies to the step from decision ``t`` to ``t + 1``. Outside the window
    (:meth:`configs.schema.StressWindow.steps`) the factors are 1 and the shift 0. Inside:
    ``sigma_factor`` (volatility), ``A_bid_factor`` / ``A_ask_factor`` (fill intensity),
    ``k_factor`` (fill decay), and ``mid_shift`` (price units added to the step's mid
    increment): ``rate * dt`` (drift) plus the jump ``size`` in the window's first step and,
    with ``revert``, ``-size`` in its last (``rate`` and ``size`` times ``sigma`` when given
    in sigmas).

    :raises ValueError: naming the scenario, when it declares no meaning in the analytic
        market or its window holds no step (or a reverting jump a single step).
    """
    where = f"stress scenario {scenario.name!r}"
    if "analytic" not in scenario.markets:
        raise ValueError(f"{where}: declares markets {scenario.markets}, not 'analytic'")
    shocks = scenario.perturbations.active()
    unknown = sorted(set(shocks) - STRESS_PERTURBATIONS)
    if unknown:
        raise ValueError(f"{where}: perturbations {unknown} are not applied by the analytic market")
    try:
        first, stop = scenario.window.steps(config.n_steps, config.T)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    sched = np.ones((len(STRESS_ROWS), config.n_steps))
    sched[S_SHIFT] = 0.0
    win = slice(first, stop)
    pert = scenario.perturbations
    if pert.volatility is not None:
        sched[S_SIGMA, win] = pert.volatility.factor
    if pert.fill_intensity is not None:
        f = pert.fill_intensity
        rows = {"both": [S_A_BID, S_A_ASK], "bid": [S_A_BID], "ask": [S_A_ASK]}[f.side]
        sched[rows, win] = f.factor
    if pert.fill_decay is not None:
        sched[S_K, win] = pert.fill_decay.factor
    if pert.drift is not None:
        unit = config.sigma if pert.drift.unit == "sigma" else 1.0
        sched[S_SHIFT, win] += pert.drift.rate * unit * config.dt
    if pert.jump is not None:
        if pert.jump.revert and stop - first < 2:
            raise ValueError(f"{where}: a reverting jump needs a window of at least 2 steps")
        size = pert.jump.size * (config.sigma if pert.jump.unit == "sigma" else 1.0)
        sched[S_SHIFT, first] += size
        if pert.jump.revert:
            sched[S_SHIFT, stop - 1] -= size
    return sched


# --------------------------------------------------------------------------------------


class AnalyticMarketCore:
    """State and dynamics of ``N`` independent analytic markets, as arrays of shape ``(N,)``.

    State layout (rows of one ``(4, N)`` float64 array, exposed as named views; units):
        ``mid`` [price], ``inventory`` [lots, integers held as float64], ``cash``
        [currency], ``peak`` [currency, running maximum of the mark-to-market value, for
        the kill switch]; and ``step_count`` [int64, decisions taken in the episode].

    ``stress_schedule``: the per-step parameters of ``config.stress``
    (:func:`stress_schedule`), None without a scenario.

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
        self.state = np.zeros((4, num_envs))
        self.mid, self.inventory, self.cash, self.peak = self.state
        self.step_count = np.zeros(num_envs, np.int64)
        self._all = np.ones(num_envs, np.bool_)
        params = np.zeros(N_PARAMS)
        params[P_DEPTH_MIN] = config.depth_min
        params[P_HALF_WIDTH] = 0.5 * (config.depth_max - config.depth_min)
        params[P_A], params[P_K], params[P_EXACT] = self.fills.A, self.fills.k, self.fills.exact
        params[P_DT], params[P_N_STEPS], params[P_Q_MAX] = config.dt, config.n_steps, config.q_max
        params[P_PHI], params[P_ALPHA], params[P_T] = config.phi, config.alpha, config.T
        params[P_MAX_DRAWDOWN] = config.max_drawdown or 0.0
        params[P_MID_SCALE], params[P_MID_SHIFT] = self.midprice.scale, self.midprice.shift
        params[P_BINARY] = self.midprice.binary
        self.stress_schedule: np.ndarray | None = None
        if config.stress is not None:
            self.stress_schedule = stress_schedule(config.stress, config)
            params[P_STRESS] = 1.0
            params = np.concatenate([params, self.stress_schedule.ravel()])
        self._params = params
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Re-create the component generators from ``seed`` (entropy when None)."""
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # The start stream is spawned last, so the mid and fill streams of a seed do not
        # depend on whether exploring starts are on.
        mid_ss, fill_ss, start_ss = ss.spawn(3)
        self.mid_rng = np.random.Generator(np.random.PCG64(mid_ss))
        self.fill_rng = np.random.Generator(np.random.PCG64(fill_ss))
        self.start_rng = np.random.Generator(np.random.PCG64(start_ss))

    def state_dict(self) -> dict[str, Any]:
        """Everything that determines the future: state arrays and generator states."""
        return {
            "state": self.state.copy(),
            "step_count": self.step_count.copy(),
            "mid_rng": self.mid_rng.bit_generator.state,
            "fill_rng": self.fill_rng.bit_generator.state,
            "start_rng": self.start_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs`` and config)."""
        if state["state"].shape != self.state.shape:
            raise ValueError(
                f"state of {state['state'].shape[1]} markets cannot load into {self.num_envs}"
            )
        self.state[...] = state["state"]
        self.step_count[...] = state["step_count"]
        self.mid_rng.bit_generator.state = state["mid_rng"]
        self.fill_rng.bit_generator.state = state["fill_rng"]
        self.start_rng.bit_generator.state = state["start_rng"]

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Put the markets selected by ``mask`` (all when None) back at their initial state.

        With exploring starts (``q0_range``, ``random_start``) the initial inventory and
        decision are drawn from the start stream, one draw per reset market.
        """
        c = self.config
        sel = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        q0 = np.full(sel.size, float(c.q0))
        if c.q0_range:
            low, high = max(c.q0 - c.q0_range, -c.q_max), min(c.q0 + c.q0_range, c.q_max)
            q0 = self.start_rng.integers(low, high + 1, sel.size).astype(np.float64)
        self.mid[sel] = c.s0
        self.inventory[sel] = q0
        self.cash[sel] = 0.0
        self.peak[sel] = q0 * c.s0
        start = self.start_rng.integers(0, c.n_steps, sel.size) if c.random_start else 0
        self.step_count[sel] = start

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
        n = self.num_envs
        action = checked_actions(action, n)
        shocks = self.midprice.draw(self.mid_rng, n)
        uniforms = self.fills.draw(self.fill_rng, n)
        out = np.empty((5, n))
        flags = np.empty((3, n), np.bool_)
        obs = np.empty((4, n, 1), np.float32)
        _step_kernel(
            action, shocks, uniforms, self.state, self.step_count,
            self._all if active is None else active, self._params, out, flags, obs,
        )  # fmt: skip
        info = {
            "fill_bid": flags[FILL_BID_ROW],
            "fill_ask": flags[FILL_ASK_ROW],
            "dpnl": out[DPNL_ROW],
            "inventory_penalty": out[PENALTY_ROW],
            "bid_depth": out[BID_DEPTH_ROW],
            "ask_depth": out[ASK_DEPTH_ROW],
        }
        return dict(zip(OBS_ROWS, obs, strict=True)), out[REWARD_ROW], flags[TERMINATED_ROW], info

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


class AnalyticMarketEnv(SingleMarketEnv):
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

    def __init__(self, config: AnalyticMarketConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        self.config = config or AnalyticMarketConfig(**params)
        core = AnalyticMarketCore(self.config, 1)
        super().__init__(core, core.observation_space(), core.action_map)


class AnalyticMarketVectorEnv(BatchedMarketEnv):
    """``num_envs`` analytic markets stepped together in one kernel call.

    The same model, spaces and rewards as :class:`AnalyticMarketEnv`, with a leading batch
    axis; autoreset as :class:`envs.batched.BatchedMarketEnv` describes.

    :param num_envs: number of markets.
    :param autoreset_mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
    """

    core: AnalyticMarketCore

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        config: AnalyticMarketConfig | None = None,
        **params: Any,
    ) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        self.config = config or AnalyticMarketConfig(**params)
        core = AnalyticMarketCore(self.config, num_envs)
        super().__init__(core, core.observation_space(), core.action_map, num_envs,
                         autoreset_mode)  # fmt: skip
