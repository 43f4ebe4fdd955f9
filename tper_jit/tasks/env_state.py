"""Capture and restore one host env's complete state, for an exact ``--resume`` on the bridge.

An OGBench manipspace env (a gymnasium ``TimeLimit → OrderEnforcing → PassiveEnvChecker →
ManipSpaceEnv`` chain) continues bit for bit after ``restore(fresh_env, capture(env))``:

- **MuJoCo**: every fixed-size array of ``MjData`` (qpos, qvel, act, ctrl, mocap,
  ``qacc_warmstart``, and the derived ones: site / body poses, ``cfrc_ext``, …; ~420 kB for
  cube-single) and its lazy-evaluation flags, not the whole ``MjData`` (63 MB pickled: the
  arena).  The derived arrays matter: ogbench's controller reads the pinch site's pose of the
  last physics step's forward pass (one sub-step behind ``qpos``), so recomputing them with
  ``mj_forward`` would change the next action's IK target.  The arena (contacts and
  constraint rows of the last step) is not kept: ``mj_step`` rebuilds it from scratch.
- **The env's own variables**, of every layer of the wrapper chain: whatever is plain data
  (numbers, strings, numpy arrays, ``np.random.Generator`` with its bit-generator state, lists
  / tuples / dicts of those, ogbench's ``SE3`` / ``SO3`` poses): the task and its goal, the
  target block / button states, the step counter and time limit, ``_success``, the previous
  observation info, the env's random generator, ``TimeLimit._elapsed_steps``, the order
  enforcer's ``_has_reset``.  Model, data, MJCF tree, renderer, IK controller (scratch
  buffers only), spaces and specs are structure, rebuilt identically by ``gymnasium.make``.
  Arrays are written in place when shape and dtype match, so views other objects hold stay
  valid.

``tests/test_bridge_resume.py`` checks it: a restored cube-single / puzzle-3x3 env steps to
the same observations, rewards and flags as the original, exactly.

robosuite envs are not covered (their state is spread over robot, controller and
interpolator objects): ``exact(env)`` says so, and a resumed robosuite run restarts its
episodes with a one-line note (``loop/host.py``).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

_STRUCTURE = frozenset({"env", "spec", "_saved_kwargs", "_cached_spec", "_action_space",
                        "_observation_space", "_metadata"})
_LIE_MODULE = "ogbench.manipspace.lie"


def _plain(v: Any) -> bool:
    if isinstance(v, (bool, int, float, str, type(None), np.ndarray, np.generic,
                      np.random.Generator)):
        return not (isinstance(v, np.ndarray) and v.dtype == object)
    if type(v).__module__.startswith(_LIE_MODULE):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


def _layers(env: Any) -> list[Any]:
    """The wrapper chain, outermost first, down to the unwrapped env."""
    out = [env]
    while hasattr(out[-1], "env") and out[-1].env is not out[-1]:
        out.append(out[-1].env)
    return out


def _mujoco_of(env: Any) -> tuple[Any, Any] | None:
    u = getattr(env, "unwrapped", env)
    m, d = getattr(u, "_model", None), getattr(u, "_data", None)
    if m is None or d is None or type(m).__name__ != "MjModel":
        return None
    return m, d


def exact(env: Any) -> tuple[bool, str]:
    """Whether ``capture`` / ``restore`` continue ``env`` exactly, and if not, why."""
    if _mujoco_of(env) is None:
        return False, (f"{type(getattr(env, 'unwrapped', env)).__name__} keeps its simulator "
                       "state in objects this bridge does not capture (only OGBench's "
                       "manipspace envs are restored exactly)")
    return True, ""


_FLAGS = ("flg_energypos", "flg_energyvel", "flg_rnepost", "flg_subtreevel")
# (id, signature) of an MjModel -> its fixed-size MjData fields; the signature guards against
# a freed model's id being reused by a model of another task
_FIXED: dict[tuple[int, int], frozenset[str]] = {}


def _fixed_fields(m: Any, d: Any) -> frozenset[str]:
    """Names of the ndarray fields of ``MjData`` whose size the model alone fixes: the same in
    a fresh ``MjData`` (no contacts, no constraint rows) as in ``d``.  The others (constraint
    rows, contacts, island arrays) live in the arena and are rebuilt by every step."""
    import mujoco

    key = (id(m), int(m.signature))
    if key not in _FIXED:
        fresh = mujoco.MjData(m)
        _FIXED[key] = frozenset(
            k for k in dir(fresh) if not k.startswith("_")
            and isinstance(getattr(fresh, k, None), np.ndarray)
            and isinstance(getattr(d, k, None), np.ndarray)
            and getattr(fresh, k).size > 0  # zero-size in a fresh one: arena-sized
            and getattr(fresh, k).shape == getattr(d, k).shape
            and not k.startswith(("efc_", "contact")))
    return _FIXED[key]


def _data_arrays(m: Any, d: Any) -> dict[str, np.ndarray]:
    return {k: getattr(d, k) for k in _fixed_fields(m, d)}


def capture(env: Any) -> dict[str, Any]:
    """A picklable snapshot of ``env``: ``MjData``'s fixed-size arrays and flags + every
    layer's plain variables (see the module docstring)."""
    md = _mujoco_of(env)
    if md is None:
        raise ValueError(exact(env)[1])
    m, d = md
    attrs = [{k: v for k, v in vars(layer).items() if k not in _STRUCTURE and _plain(v)}
             for layer in _layers(env)]
    # Deep copies now: the env goes on stepping and mutates its arrays in place.
    return {"mjdata": {k: np.array(v) for k, v in _data_arrays(m, d).items()},
            "mjflags": {k: int(getattr(d, k)) for k in _FLAGS}, "time": float(d.time),
            "layers": pickle.loads(pickle.dumps(attrs)),
            "types": [type(x).__name__ for x in _layers(env)]}


def restore(env: Any, snap: dict[str, Any]) -> None:
    """Put ``snap`` (from ``capture`` of an env built the same way) into ``env``."""
    layers = _layers(env)
    types = [type(x).__name__ for x in layers]
    if types != snap["types"]:
        raise ValueError(f"env state of a {' → '.join(snap['types'])} chain cannot be put "
                         f"into a {' → '.join(types)} one")
    m, d = _mujoco_of(env)
    arrays = _data_arrays(m, d)
    saved = snap["mjdata"]
    bad = sorted(k for k in saved if k not in arrays or arrays[k].shape != saved[k].shape)
    if bad or sorted(saved) != sorted(arrays):
        raise ValueError(f"saved MuJoCo data does not fit this model (another task?): "
                         f"fields {bad[:4] or sorted(set(arrays) ^ set(saved))[:4]} differ in "
                         "size")
    for layer, attrs in zip(layers, pickle.loads(pickle.dumps(snap["layers"])), strict=True):
        for k, v in attrs.items():
            cur = getattr(layer, k, None)
            if (isinstance(cur, np.ndarray) and isinstance(v, np.ndarray)
                    and cur.shape == v.shape and cur.dtype == v.dtype and cur.flags.writeable):
                np.copyto(cur, v)
            else:
                setattr(layer, k, v)
    for k, v in saved.items():
        np.copyto(arrays[k], v)
    for k, v in snap["mjflags"].items():
        setattr(d, k, v)
    d.time = snap["time"]
