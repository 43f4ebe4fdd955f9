"""``puzzle-3x3`` / ``puzzle-4x4``: lights-out with physical push buttons (OGBench-like puzzle).

A 3 x 3 grid of buttons (8 cm pitch, button i = row * 3 + col, row 0 at +y). Pressing a
button (joint pushed below -8 mm; released above -4 mm) toggles its light and the lights of
its 4-neighbours. Lights live in ``info['lights']`` (not in physics). Five evaluation tasks
(``puzzle-3x3-singletask-task{1..5}``) start from a light pattern that needs 1..5 presses to
reach the goal "all lights off"; ``puzzle-3x3`` (play) draws random start and goal patterns.

Observation (27): gripper block (9), button displacements / travel (9, in [-1, 0]), lights
(9, {0, 1}). Reward (OGBench singletask): number of lights equal to the goal minus 9; success
= all equal; terminates on success; 500 steps.

``puzzle-4x4`` (n = 4, button i = row * 4 + col, same 8 cm pitch): observation 9 + 16 + 16 =
41, reward n_lights_matching - 16, 500 steps. Its toggle matrix is singular over GF(2) (rank
12, 4-dimensional null space), so not every pattern is reachable: the evaluation tasks are
built from presses (start = presses applied to the all-off goal) and play resets draw a random
goal and apply random presses to it, so every start is solvable. The oracle solves with
``gf2_solver`` (Gaussian elimination, free variables 0) and picks the minimum-weight solution
over the null space (``null_space``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from envs_mjx import core, scene
from envs_mjx.oracles import buttons as buttons_oracle

N = 3
PITCH = 0.08
PRESS_DOWN, RELEASE_UP = -0.008, -0.004


def button_xy(n: int = N) -> np.ndarray:
    """(n*n, 2) button centres, row 0 at +y, centred on the origin."""
    h = (n - 1) / 2
    return np.array([[(c - h) * PITCH, (h - r) * PITCH] for r in range(n) for c in range(n)])


BUTTON_XY = button_xy(N)


def toggle_matrix(n: int = N) -> np.ndarray:
    """(n*n, n*n) 0/1 matrix: row i = lights toggled by pressing button i."""
    a = np.zeros((n * n, n * n), np.int32)
    for r in range(n):
        for c in range(n):
            i = r * n + c
            for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < n and 0 <= c + dc < n:
                    a[i, (r + dr) * n + c + dc] = 1
    return a


def _rref(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Gauss-Jordan over GF(2): (reduced a, row transform E with E a = reduced, pivot cols)."""
    n = a.shape[0]
    m = np.concatenate([a % 2, np.eye(n, dtype=np.int32)], 1).astype(np.int32)
    pivots: list[int] = []
    row = 0
    for col in range(a.shape[1]):
        piv = next((r for r in range(row, n) if m[r, col]), None)
        if piv is None:
            continue
        m[[row, piv]] = m[[piv, row]]
        for r in range(n):
            if r != row and m[r, col]:
                m[r] ^= m[row]
        pivots.append(col)
        row += 1
    return m[:, : a.shape[1]], m[:, a.shape[1]:], pivots


def gf2_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a 0/1 matrix over GF(2) (Gauss-Jordan); raises if singular."""
    _, e, pivots = _rref(a)
    if len(pivots) < a.shape[0]:
        raise ValueError("matrix is singular over GF(2)")
    return e


def gf2_solver(t: np.ndarray) -> np.ndarray:
    """(n, n) S with ``x = d @ S % 2`` solving ``x @ t = d`` for every reachable d (d in the
    row space of t); free variables 0. Equals ``gf2_inverse(t)`` when t is invertible."""
    _, e, pivots = _rref(t.T)  # solve t^T x = d: x[pivots[r]] = (E d)[r]
    s = np.zeros(t.shape, np.int32)
    for r, col in enumerate(pivots):
        s[:, col] = e[r]
    return s


def null_space(t: np.ndarray) -> np.ndarray:
    """(k, n) basis of {x : x @ t = 0} over GF(2) (k = 0 when t is invertible)."""
    red, _, pivots = _rref(t.T)
    free = [c for c in range(t.shape[0]) if c not in pivots]
    basis = np.zeros((len(free), t.shape[0]), np.int32)
    for j, f in enumerate(free):
        basis[j, f] = 1
        for r, col in enumerate(pivots):
            basis[j, col] = red[r, f]
    return basis


def reachable(t: np.ndarray, d: np.ndarray) -> bool:
    """True if pattern d (0/1) can be produced by presses (``x @ t = d``)."""
    d = np.asarray(d, np.int32) % 2
    return bool(((d @ gf2_solver(t) % 2) @ t % 2 == d).all())


def min_weight_solution(t: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Fewest-press solution of ``x @ t = d`` (d reachable), by enumerating the null space."""
    x0 = np.asarray(d, np.int32) @ gf2_solver(t) % 2
    ns = null_space(t)
    combos = (np.arange(2 ** len(ns))[:, None] >> np.arange(len(ns))) & 1
    cands = (x0 + combos @ ns) % 2
    return cands[np.argmin(cands.sum(1))]


TOGGLE = toggle_matrix()
TOGGLE_INV = gf2_inverse(TOGGLE)
# presses that solve each evaluation task (start = TOGGLE^T s, goal = all off)
TASK_PRESSES = ((4,), (0, 8), (1, 3, 8), (0, 2, 6, 8), (1, 3, 4, 5, 7))
# puzzle-4x4 evaluation tasks: minimum-weight press sets (2..6 presses, checked in the tests)
TASK_PRESSES_4X4 = ((0, 15), (0, 6, 15), (8, 9, 14, 15), (5, 7, 9, 10, 12), (0, 1, 2, 3, 4, 5))


def task_presses(task_id: int, n: int = N) -> tuple[int, ...]:
    return (TASK_PRESSES if n == 3 else TASK_PRESSES_4X4)[task_id - 1]


def task_start(task_id: int, n: int = N) -> np.ndarray:
    """(n*n,) bool start lights of evaluation task ``task_id`` (1..5)."""
    s = np.zeros(n * n, np.int32)
    s[list(task_presses(task_id, n))] = 1
    return (s @ toggle_matrix(n) % 2).astype(bool)


LIT_RGBA = (0.95, 0.85, 0.2, 1.0)
UNLIT_RGBA = (0.35, 0.35, 0.4, 1.0)


class PuzzleEnv(core.MjxEnv):
    """Lights-out n x n (3 or 4) with push buttons; see the module docstring."""

    oracle = buttons_oracle

    def __init__(self, task_id: int = 1, n: int = N):
        if not 0 <= task_id <= 5:
            raise ValueError(f"task_id must be in 0..5 (0 = play), got {task_id}")
        if n not in (3, 4):
            raise ValueError(f"n must be 3 or 4, got {n}")
        xy = button_xy(n)
        super().__init__(scene.SceneSpec(buttons=tuple(map(tuple, xy))))
        self.task_id = task_id
        self.n = n
        base = f"puzzle-{n}x{n}"
        self.name = base if task_id == 0 else f"{base}-singletask-task{task_id}"
        self.episode_length = 500
        self.n_buttons = n * n
        self._xy = xy
        self.button_xy = jnp.asarray(xy, jnp.float32)
        t = toggle_matrix(n)
        self.toggle = jnp.asarray(t)
        # solver: x = d @ toggle_inv (true inverse for 3x3; free variables 0 for 4x4)
        self.toggle_inv = jnp.asarray(gf2_solver(t))
        self.null_space = jnp.asarray(null_space(t))  # (k, n*n), k = 0 for 3x3, 4 for 4x4
        self._start = jnp.asarray(task_start(max(task_id, 1), n))

    def button_q(self, data: mjx.Data) -> jax.Array:
        """(n*n,) button joint displacements (m, <= 0)."""
        return data.qpos[scene.ARM_NQ : scene.ARM_NQ + self.n_buttons]

    def reset(self, key: jax.Array) -> core.State:
        k_start, k_goal, k_hand = jax.random.split(key, 3)
        start, goal = self._start, jnp.zeros(self.n_buttons, bool)
        if self.task_id == 0:
            goal = jax.random.bernoulli(k_goal, 0.5, (self.n_buttons,))
            if self.n == 3:  # every pattern is reachable
                start = jax.random.bernoulli(k_start, 0.5, (self.n_buttons,))
            else:  # random presses applied to the goal: always solvable
                presses = jax.random.bernoulli(k_start, 0.5, (self.n_buttons,))
                flips = (presses.astype(jnp.int32) @ self.toggle) % 2
                start = goal ^ flips.astype(bool)
        hand = jnp.asarray((0.0, 0.0, 0.15)) + jax.random.uniform(
            k_hand, (3,), minval=-0.03, maxval=0.03)
        qpos = jnp.concatenate([hand, jnp.zeros(3 + self.n_buttons)])
        info = {"lights": start, "goal_lights": goal,
                "pressed": jnp.zeros(self.n_buttons, bool)}
        return self._make_state(self.make_data(qpos), info)

    def _update_info(self, data: mjx.Data, info: dict) -> dict:
        q = self.button_q(data)
        pressed = jnp.where(info["pressed"], q < RELEASE_UP, q < PRESS_DOWN)
        edge = (pressed & ~info["pressed"]).astype(jnp.int32)
        flips = (edge @ self.toggle) % 2
        return {**info, "pressed": pressed, "lights": info["lights"] ^ flips.astype(bool)}

    def _success(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.all(info["lights"] == info["goal_lights"])

    def _reward(self, success: jax.Array, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.sum(info["lights"] == info["goal_lights"]) - float(self.n_buttons)

    def _get_obs(self, data: mjx.Data, info: dict) -> jax.Array:
        return jnp.concatenate([
            self.arm_obs(data), self.button_q(data) / scene.BUTTON_TRAVEL,
            info["lights"].astype(jnp.float32)]).astype(jnp.float32)

    def obs_layout(self) -> list[tuple[str, int]]:
        return [*core.ARM_OBS_LAYOUT, ("button_pos", self.n_buttons),
                ("lights", self.n_buttons)]

    def plot_points(self, qpos: np.ndarray) -> np.ndarray:
        return self._xy

    def frame_extras(self, state: core.State) -> jax.Array:
        return state.info["lights"].astype(jnp.float32)

    def paint(self, model, extras: np.ndarray) -> None:
        # the lights live in info, not in physics: a lit button is drawn yellow, an unlit grey
        for i, lit in enumerate(extras):
            gid = model.geom(f"button{i}_geom").id
            model.geom_rgba[gid] = LIT_RGBA if lit > 0.5 else UNLIT_RGBA
