"""Agent checkpoints with orbax: the trained parameters at the end of each phase.

``run_dir/checkpoints/<step>/`` holds the agent's pytree (parameters, target critic,
optimiser state, step counter) written by an orbax ``CheckpointManager`` (atomic: a step
folder appears only when complete; the last ``keep`` are kept).  Restoring needs a template
agent of the same configuration (``acfql.init`` with the run's config), against which the
arrays are restored.  Full-run resume (replay, priorities, env states, RNG) is not part of
this module yet.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(run_dir: str | pathlib.Path, keep: int = 3) -> ocp.CheckpointManager:
    path = pathlib.Path(run_dir).absolute() / "checkpoints"
    return ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True))


def save_agent(run_dir: str | pathlib.Path, step: int, agent: Any) -> pathlib.Path:
    """Write ``agent`` at ``step``; returns the checkpoint folder."""
    mngr = _manager(run_dir)
    try:
        mngr.save(int(step), args=ocp.args.StandardSave(agent), force=True)
        mngr.wait_until_finished()
    finally:
        mngr.close()
    return pathlib.Path(run_dir).absolute() / "checkpoints" / str(int(step))


def latest_step(run_dir: str | pathlib.Path) -> int | None:
    mngr = _manager(run_dir)
    try:
        return mngr.latest_step()
    finally:
        mngr.close()


def restore_agent(run_dir: str | pathlib.Path, template: Any, step: int | None = None) -> Any:
    """The agent saved at ``step`` (default: the latest), shaped like ``template``."""
    mngr = _manager(run_dir)
    try:
        step = mngr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint under checkpoints/")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    finally:
        mngr.close()
