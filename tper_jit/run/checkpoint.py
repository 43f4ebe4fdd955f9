"""Checkpoints with orbax: agent-only ones per phase, and full-state ones for ``--resume``.

- ``run_dir/checkpoints/<step>/``: the agent's pytree (parameters, target critic, optimiser
  state, step counter) at the end of each phase (``save_agent`` / ``restore_agent``).
- ``run_dir/resume/<step>/``: the whole per-seed training state (see ``RunCheckpointer``):
  agent, episode table, sum-trees, T-PER state, online rings, env states, every RNG key and
  counter, plus a JSON ``meta`` item with the loop position (phase, steps, next eval/save,
  logged rows).  The offline dataset block is *not* in it: it is referenced by path + sha256
  in ``config.json`` and re-read on resume.

Both are written by an orbax ``CheckpointManager`` (atomic: a step folder appears only when
complete; the newest ``keep`` are kept).  Restoring needs a template of the same
configuration, against which the arrays are restored.
"""

from __future__ import annotations

import pathlib
import pickle
from typing import Any

import jax
import numpy as np
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


class CheckpointError(OSError):
    """A checkpoint could not be written or read (full disk, unwritable folder, mismatch)."""


def _leaves_dict(tree: Any) -> dict[str, np.ndarray]:
    # Flattened by position: custom pytree nodes (MJX ``Data``, flax structs) need no orbax
    # support, and a host copy is taken now, so the caller may donate the device buffers to
    # the next chunk while the write goes on in the background.
    # Zero-size leaves (e.g. empty MJX contact arrays) are not written; the template's shape
    # restores them.
    return {f"{i:05d}": np.array(x) for i, x in enumerate(jax.tree.leaves(tree))
            if np.size(x) > 0}


class RunCheckpointer:
    """Full-state checkpoints under ``run_dir/resume`` (async writes, newest ``keep`` kept).

    ``save(step, state, meta)`` copies ``state`` to the host and returns while orbax writes;
    a write error (e.g. a full disk) surfaces as ``CheckpointError`` at the next ``save``,
    ``wait`` or ``close``.  ``restore(template)`` returns ``(state, meta)`` of the newest (or a
    given) step, with the arrays checked against the template's shapes and dtypes.
    """

    def __init__(self, run_dir: str | pathlib.Path, keep: int = 2, async_save: bool = True):
        self.path = pathlib.Path(run_dir).absolute() / "resume"
        try:
            self.mngr = ocp.CheckpointManager(self.path, options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=async_save))
        except OSError as e:
            raise CheckpointError(f"cannot create the checkpoint folder {self.path}: {e}") from e
        self.last_saved: int | None = self.mngr.latest_step()

    def _guard(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - orbax wraps OS errors in several types
            raise CheckpointError(f"checkpoint {what} failed under {self.path}: "
                                  f"{type(e).__name__}: {e}") from e

    def save(self, step: int, state: Any, meta: dict[str, Any],
             host: Any = None) -> pathlib.Path:
        """``host``: the host envs' state (``HostSeedEnvs.get_state()``), pickled into a
        ``host`` item (a uint8 array) and flagged in ``meta['host_envs']``."""
        self.wait()  # at most one write in flight; reports a failed previous write
        items = {"state": ocp.args.StandardSave(_leaves_dict(state))}
        if host is not None:
            blob = np.frombuffer(pickle.dumps(host, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
            items["host"] = ocp.args.StandardSave({"pickle": blob.copy()})
            meta = {**meta, "host_envs": True}
        args = ocp.args.Composite(meta=ocp.args.JsonSave(meta), **items)
        self._guard(f"write at step {step}", self.mngr.save, int(step), args=args,
                    force=True)
        self.last_saved = int(step)
        return self.path / str(int(step))

    def wait(self) -> None:
        self._guard("write", self.mngr.wait_until_finished)

    def latest_step(self) -> int | None:
        return self.mngr.latest_step()

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON ``meta`` item of ``step`` alone (no arrays are read)."""
        got = self._guard(f"read of step {step}", self.mngr.restore, step,
                          args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(got["meta"])

    def restore_host(self, step: int) -> Any:
        """The host envs' state saved with ``step`` (None if the checkpoint has none).  It is
        a pickle: resume only run folders you made."""
        if not self.read_meta(step).get("host_envs"):
            return None
        got = self._guard(f"read of the host envs of step {step}", self.mngr.restore, step,
                          args=ocp.args.Composite(host=ocp.args.StandardRestore()))
        return pickle.loads(np.asarray(got["host"]["pickle"], np.uint8).tobytes())

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        step = self.mngr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {self.path}")
        leaves, treedef = jax.tree.flatten(template)
        abstract = {f"{i:05d}": jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)
                    for i, x in enumerate(leaves) if np.size(x) > 0}
        got = self._guard(f"read of step {step}", self.mngr.restore, step,
                          args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                  meta=ocp.args.JsonRestore()))
        arrays = got["state"]
        if sorted(arrays) != sorted(abstract):
            raise CheckpointError(f"{self.path / str(step)}: {len(arrays)} arrays, the run's "
                                  f"state has {len(abstract)} (incompatible configuration)")
        out = []
        for i, x in enumerate(leaves):
            if np.size(x) == 0:
                out.append(np.zeros(np.shape(x), np.asarray(x).dtype))
                continue
            a = np.asarray(arrays[f"{i:05d}"])
            if a.shape != np.shape(x) or a.dtype != np.asarray(x).dtype:
                raise CheckpointError(f"{self.path / str(step)}: array {i} is {a.shape} "
                                      f"{a.dtype}, the run expects {np.shape(x)} "
                                      f"{np.asarray(x).dtype} (incompatible configuration)")
            out.append(a)
        return jax.tree.unflatten(treedef, out), dict(got["meta"])

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.mngr.close()
