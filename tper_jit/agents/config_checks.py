"""Validation shared by the agent configs: one message naming ``--agent.<field>``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Check = tuple[str, bool, str]  # (field, ok, what it must be)


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def normalise_tuples(cfg: Any, *names: str) -> None:
    """Lists from a command line or JSON become tuples, so a frozen config stays hashable."""
    for name in names:
        if isinstance(getattr(cfg, name), list):
            object.__setattr__(cfg, name, tuple(getattr(cfg, name)))


def common(cfg: Any) -> list[Check]:
    """Fields every agent has: lr, batch_size, discount, tau, hidden_dims, num_qs, H."""
    return [
        ("lr", cfg.lr > 0, "must be > 0"),
        ("batch_size", is_int(cfg.batch_size) and cfg.batch_size >= 1,
         "must be an integer >= 1"),
        ("discount", 0.0 < cfg.discount <= 1.0, "must be in (0, 1]"),
        ("tau", 0.0 <= cfg.tau <= 1.0, "must be in [0, 1]"),
        ("hidden_dims", isinstance(cfg.hidden_dims, tuple) and len(cfg.hidden_dims) > 0
         and all(is_int(h) and h >= 1 for h in cfg.hidden_dims),
         "must be a non-empty tuple of positive integers"),
        ("num_qs", is_int(cfg.num_qs) and cfg.num_qs >= 1, "must be an integer >= 1"),
        ("horizon_length", is_int(cfg.horizon_length) and cfg.horizon_length >= 1,
         "must be an integer >= 1"),
    ]


def enforce(cfg: Any, checks: Iterable[Check], bools: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` for the first failed check or non-bool field."""
    for name, ok, why in checks:
        if not ok:
            raise ValueError(f"--agent.{name} {why}, got {getattr(cfg, name)!r}")
    for name in bools:
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"--agent.{name} must be a bool, got {getattr(cfg, name)!r}")
