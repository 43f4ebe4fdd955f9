"""``--save_all_online_states``: the online phase's transitions, written to the run folder.

QC (``main.py``) appends, at every online env step ``i``, the step, the next observation and
the simulator's ``qpos`` / ``qvel`` (``button_states`` for puzzles) to lists and writes them to
``<save_dir>/data.npz`` at the end, with the phase wall times.  Here the online transitions
already live in the replay's online rings (``replay.store``), written by every env stream; at
the end of the online phase they are read back, each stream's ring unrolled into write order,
and written to ``<run>/data.npz`` (``<run>/seeds/seed<k>/data.npz`` per seed with
``--num_seeds`` > 1):

    observations (M, D), actions (M, A), rewards (M,), terminals (M,), masks (M,),
    next_observations (M, D) — QC's ``obs`` —, successes (M,): the replay rows, rewards after
        the task's shift and ``--sparse``, as the agent learnt from them;
    stream (M,) int32: the env stream (``--num_envs``) that wrote the row;
    stream_step (M,) int64: its index among that stream's transitions (0, 1, …).

Rows are ordered by stream, then by ``stream_step``.  What differs from QC: the rings keep the
newest ``--buffer_size`` rows (all of them while ``buffer_size`` ≥ ``online_steps``, the
default 2M against 1M), and simulator states (``qpos`` / ``qvel`` / ``button_states``) are not
kept by the replay, so they are not in the file; the phase times are in ``metrics.csv``
(``time/*``).
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import numpy as np

FIELDS = ("observations", "actions", "rewards", "terminals", "masks", "next_observations",
          "successes")
FILE_NAME = "data.npz"


def stream_rows(cursor: np.ndarray, rows_per_stream: int) -> tuple[np.ndarray, ...]:
    """``(row, stream, stream_step)`` of every live online row, in stream then write order.

    Stream ``s`` has written ``cursor[s]`` rows into ring rows ``[s·R, (s+1)·R)``; the ring
    keeps the newest ``min(cursor[s], R)``, the oldest of them at ``cursor[s] % R`` once full.
    """
    rows, streams, steps = [], [], []
    for s, c in enumerate(np.asarray(cursor, np.int64)):
        kept = min(int(c), rows_per_stream)
        step = np.arange(c - kept, c, dtype=np.int64)
        rows.append(s * rows_per_stream + step % rows_per_stream)
        streams.append(np.full(kept, s, np.int32))
        steps.append(step)
    return np.concatenate(rows), np.concatenate(streams), np.concatenate(steps)


def online_arrays(store: Any) -> dict[str, np.ndarray]:
    """The arrays of ``data.npz`` (module docstring) from one seed's ``TrajectoryStore``."""
    cursor = np.asarray(jax.device_get(store.streams.cursor))
    row, stream, step = stream_rows(cursor, store.rows_per_stream)
    online = jax.device_get(store.online)
    out = {k: np.asarray(getattr(online, k))[row] for k in FIELDS}
    return {**out, "stream": stream, "stream_step": step}


def save_online_states(run_dir: pathlib.Path, rest: Any, seed_list: tuple[int, ...],
                       out=None) -> list[pathlib.Path]:
    """Write ``data.npz`` for every seed of a finished online phase; returns the files.
    ``rest`` is the driver's state (a leading seed axis when several seeds run)."""
    store = rest.replay.store
    if not np.asarray(jax.device_get(store.streams.cursor)).any():  # no online phase ran
        print("--save_all_online_states: no online phase ran, no data.npz written", file=out)
        return []
    paths = []
    for s, seed in enumerate(seed_list):
        one = store if len(seed_list) == 1 else jax.tree.map(lambda x, s=s: x[s], store)
        folder = run_dir if len(seed_list) == 1 else run_dir / "seeds" / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE_NAME
        np.savez(path, **online_arrays(one))
        paths.append(path)
    print(f"online states: {', '.join(map(str, paths))}", file=out)
    return paths
