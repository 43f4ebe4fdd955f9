"""Drive ogbench's own scripted Markov oracles on singletask episodes, through ogbench's
env or through the port.

The oracles (``CubeMarkovOracle``, ``ButtonMarkovOracle``) are written for ogbench's data-
collection mode: they read a target block / button from ``info``. ``Driver`` supplies it
for the singletask goals: cubes in order, each the first one not yet at its goal; puzzle
buttons from a minimum-press lights-out solution (brute force over GF(2), n ≤ 16), each
pressed until it shows its target state and the oracle has left it. ``Driver.act`` takes
a small dict (``og_view`` for ogbench's env, ``port_view`` for the port's state), so both
envs are driven by identical code.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

CENTER = np.array([0.425, 0.0, 0.0])


def solve_lights_out(toggle: np.ndarray, init: np.ndarray, goal: np.ndarray) -> list[int]:
    """Fewest buttons p with ``(init + toggle @ p) mod 2 == goal``; (n,) arrays, n ≤ 16.
    O(2ⁿ n²)."""
    n = len(init)
    subsets = np.array(list(itertools.product((0, 1), repeat=n)), np.int32)  # (2^n, n)
    ok = ((init[None] + subsets @ toggle.T) % 2 == goal[None]).all(1)
    if not ok.any():
        raise ValueError("lights-out goal not reachable")
    best = subsets[ok][np.argmin(subsets[ok].sum(1))]
    return [int(i) for i in np.nonzero(best)[0]]


class Driver:
    """ogbench's oracle for one singletask episode of ``family`` (``cube-*`` / ``puzzle-*``).

    ``act(view)`` -> (5,) float32 action; ``view`` has ``effector_pos`` (3,),
    ``effector_yaw``, ``gripper_opening``, ``gripper_contact`` and, for cubes,
    ``block_pos`` (n, 3), ``block_yaw`` (n,), ``goals`` (n, 3); for puzzles ``buttons`` (n,),
    ``goal_buttons`` (n,), ``button_top`` (n, 3), ``toggle`` (n, n).
    """

    def __init__(self, family: str, og_env, seed: int = 0):
        from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        np.random.seed(seed)  # the oracles draw their final poses from np.random
        self.cube = family.startswith("cube")
        cls = CubeMarkovOracle if self.cube else ButtonMarkovOracle
        self.oracle = cls(env=og_env, min_norm=0.4)
        self.target = None
        self.plan: list[int] | None = None
        self.target_state = 0

    def _info(self, v: dict) -> dict:
        info = {"proprio/effector_pos": np.asarray(v["effector_pos"]),
                "proprio/effector_yaw": np.array([v["effector_yaw"]]),
                "proprio/gripper_opening": np.array([v["gripper_opening"]]),
                "proprio/gripper_contact": np.array([v["gripper_contact"]])}
        if self.cube:
            for i, (p, y) in enumerate(zip(v["block_pos"], v["block_yaw"], strict=True)):
                info[f"privileged/block_{i}_pos"] = np.asarray(p)
                info[f"privileged/block_{i}_yaw"] = np.array([y])
            done = np.linalg.norm(v["block_pos"] - v["goals"], axis=-1) <= 0.04
            tgt = int(np.argmin(done)) if not done.all() else len(done) - 1
            info.update({"privileged/target_block": tgt,
                         "privileged/target_block_pos": np.asarray(v["goals"][tgt]),
                         "privileged/target_block_yaw": np.zeros(1)})
            return info
        buttons = np.asarray(v["buttons"])
        if self.plan is None:
            self.plan = solve_lights_out(v["toggle"], buttons, np.asarray(v["goal_buttons"]))
        if (self.plan and buttons[self.plan[0]] == self.target_state and self.oracle.done
                and self.target == self.plan[0]):
            self.plan.pop(0)
        tgt = self.plan[0] if self.plan else (self.target if self.target is not None else 0)
        if tgt != self.target:
            self.target_state = 1 - int(buttons[tgt])
        for i, s in enumerate(buttons):
            info[f"privileged/button_{i}_state"] = int(s)
        info.update({"privileged/target_button": tgt,
                     "privileged/target_button_state": self.target_state,
                     "privileged/target_button_top_pos": np.asarray(v["button_top"][tgt])})
        return info

    def act(self, view: dict) -> np.ndarray:
        info = self._info(view)
        tgt = info.get("privileged/target_block", info.get("privileged/target_button"))
        if tgt != self.target:
            self.target = tgt
            self.oracle.reset(None, info)
        return np.asarray(self.oracle.select_action(None, info), np.float32)


def og_view(env, og_env) -> dict:
    """``Driver`` view of ogbench's env's current state."""
    u = og_env.unwrapped
    d = u._data
    info = u.compute_ob_info()
    v = {"effector_pos": info["proprio/effector_pos"],
         "effector_yaw": info["proprio/effector_yaw"][0],
         "gripper_opening": info["proprio/gripper_opening"][0],
         "gripper_contact": info["proprio/gripper_contact"][0]}
    if hasattr(env, "n_cubes"):
        v["block_pos"] = np.stack([info[f"privileged/block_{i}_pos"] for i in range(env.n_cubes)])
        v["block_yaw"] = np.array([info[f"privileged/block_{i}_yaw"][0]
                                   for i in range(env.n_cubes)])
        v["goals"] = np.array(d.mocap_pos[env.mocap_ids])
    else:
        v.update(buttons=np.array(u._cur_button_states), goal_buttons=np.array(
            u._target_button_states), button_top=np.array(d.site_xpos[env.top_sites]),
            toggle=env.toggle)
    return v


def port_view(env, state) -> dict:
    """``Driver`` view of the port's ``state`` (from its observation and info)."""
    obs = np.asarray(state.obs)
    v = {"effector_pos": obs[12:15] / 10 + CENTER,
         "effector_yaw": float(np.arctan2(obs[16], obs[15])),
         "gripper_opening": float(obs[17] / 3), "gripper_contact": float(obs[18])}
    if hasattr(env, "n_cubes"):
        blocks = obs[19:].reshape(env.n_cubes, 9)
        v.update(block_pos=blocks[:, :3] / 10 + CENTER,
                 block_yaw=np.arctan2(blocks[:, 8], blocks[:, 7]),
                 goals=np.asarray(state.info["goal"]))
    else:
        v.update(buttons=np.asarray(state.info["buttons"]),
                 goal_buttons=np.asarray(state.info["goal_buttons"]),
                 button_top=np.asarray(state.data.site_xpos)[env.top_sites], toggle=env.toggle)
    return v


def oracle_episode(env, og_env, key: jax.Array, max_steps: int, step=None,
                   seed: int = 0) -> tuple[bool, int]:
    """ogbench's oracle closed-loop on the port (its own state only) from
    ``env.reset(key)``; returns (success reported, steps taken)."""
    family = "cube" if hasattr(env, "n_cubes") else "puzzle"
    driver = Driver(family, og_env, seed)
    step = step or jax.jit(env.step)
    state = jax.jit(env.reset)(key)
    for t in range(1, max_steps + 1):
        state = step(state, jnp.asarray(driver.act(port_view(env, state))))
        if bool(state.success):
            return True, t
    return False, max_steps
