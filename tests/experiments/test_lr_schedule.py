"""The learning-rate schedule of training (agent.lr_decay, agent.lr_decay_start)."""

from __future__ import annotations

import pytest

from experiments.config import load_config
from experiments.train import make_learner, planned_updates, set_learning_rates


@pytest.mark.parametrize("start", [0.0, 0.5])
def test_rates_hold_then_fall_linearly_to_zero_at_the_last_update(start):
    cfg = load_config(
        "configs/cj_sac.yaml",
        ["agent.lr_decay=true", f"agent.lr_decay_start={start}", "agent.hidden_sizes=[4]",
         "agent.actor_lr=0.002", "agent.critic_lr=0.001", "training.total_steps=42000"],
    )  # fmt: skip
    learner = make_learner(cfg, 3)
    total = planned_updates(cfg)
    assert total == (42_000 - cfg.training.warmup_steps) // 32 * 4

    def rates(updates: int) -> tuple[float, float]:
        set_learning_rates(learner, cfg, updates)
        return (float(learner.actor_optimizer.learning_rate.numpy()),
                float(learner.critic_optimizer.learning_rate.numpy()))  # fmt: skip

    held = int(start * total)
    assert rates(held) == pytest.approx((0.002, 0.001))
    midway = (held + total) // 2
    assert rates(midway) == pytest.approx((0.001, 0.0005), rel=1e-3)
    assert rates(total) == (0.0, 0.0)
    assert rates(total + 10) == (0.0, 0.0)
    if start > 0:
        assert rates(held // 2) == pytest.approx((0.002, 0.001))
