"""Policy videos of MJX tasks: a jitted recording rollout, then offscreen rendering on the host.

The trainer's jitted evaluation stays as it is (pure, statistics only).  Videos come from a
second, small rollout that records the physics state of every executed env step —
``qpos (M, T+1, nq)`` plus per-task extras such as the puzzle lights — and the host replays
those states through C MuJoCo (``mj_forward`` then ``mujoco.Renderer``), so the device never
renders.  Headless machines need an offscreen GL: EGL (``libegl1``, the default picked when no
``DISPLAY`` is set) or OSMesa (``MUJOCO_GL=osmesa``, ``libosmesa6``).

``write_video`` encodes MP4 when ``imageio`` with ``imageio-ffmpeg`` is installed, else GIF
(Pillow, which matplotlib already needs).
"""

from __future__ import annotations

import copy
import os
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct

from envs_mjx.wrappers import EpisodeWrapper, _select

WIDTH, HEIGHT = 320, 240  # the scene's offscreen buffer (scene.build_xml)


@struct.dataclass
class Recording:
    """M recorded episodes of at most T = calls · H env steps.

    Frame t is the state after t executed steps (frame 0: the reset state); frames at or after
    an episode's end repeat its last state and have ``valid`` False (frame 0 is always valid).
    """

    qpos: jax.Array  # (M, T+1, nq)
    extras: jax.Array  # (M, T+1, E) task extras per frame (MjxEnv.frame_extras), E may be 0
    valid: jax.Array  # (M, T+1) bool
    success: jax.Array  # (M,) bool, success at any executed step


def make_recorder(env: EpisodeWrapper, horizon_exec: int, num_episodes: int,
                  policy: tuple[Callable, Callable]) -> Callable:
    """Jitted ``record(params, key) -> Recording`` of ``num_episodes`` episodes in parallel.

    ``policy = (init, step)`` with the evaluation's protocol (``tasks.evaluation``):
    ``init(params, states, key) -> pstate`` and ``step(params, pstate, states, key) ->
    (pstate, actions (M, H, A))`` on the batched states.  Chunks run open-loop and the rest of
    a chunk is dropped once the episode ended, as in ``ChunkedVecEnv``; each env plays one
    episode (no auto-reset)."""
    m, h = int(num_episodes), int(horizon_exec)
    n_calls = -(-env.episode_length // h)
    policy_init, policy_step = policy
    extras_of = env.env.frame_extras

    def one_chunk(state, alive, chunk):
        def body(carry, action):
            st, alive = carry
            nxt = env.step(st, action)
            st = _select(alive, nxt, st)
            frame = (st.data.qpos, extras_of(st), alive, nxt.success & alive)
            return (st, alive & ~nxt.done), frame

        return jax.lax.scan(body, (state, alive), chunk)

    def record(params, key):
        k_reset, k_init, k_policy = jax.random.split(key, 3)
        state = jax.vmap(env.reset)(jax.random.split(k_reset, m))
        pstate = policy_init(params, state, k_init)

        def call(carry, k):
            state, pstate, alive = carry
            pstate, actions = policy_step(params, pstate, state, k)
            (state, alive), frames = jax.vmap(one_chunk)(state, alive, actions)
            return (state, pstate, alive), frames

        first = (state.data.qpos, jax.vmap(extras_of)(state))
        _, (qpos, extras, valid, succ) = jax.lax.scan(
            call, (state, pstate, jnp.ones((m,), bool)), jax.random.split(k_policy, n_calls))
        # (calls, M, H, ...) -> (M, calls · H, ...), the reset frame in front
        flat = lambda x: jnp.moveaxis(x, 1, 0).reshape(m, n_calls * h, *x.shape[3:])  # noqa: E731
        qpos = jnp.concatenate([first[0][:, None], flat(qpos)], 1)
        extras = jnp.concatenate([first[1][:, None], flat(extras)], 1)
        valid = jnp.concatenate([jnp.ones((m, 1), bool), flat(valid)], 1)
        return Recording(qpos=qpos, extras=extras, valid=valid, success=flat(succ).any(1))

    return jax.jit(record)


def default_camera(model: mujoco.MjModel) -> mujoco.MjvCamera:
    """A fixed three-quarter view of the 0.6 m workspace (the scenes have no camera)."""
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    cam.lookat[:] = (0.0, 0.0, 0.05)
    cam.distance, cam.azimuth, cam.elevation = 0.85, 135.0, -35.0
    return cam


def render_frames(env, qpos: np.ndarray, extras: np.ndarray | None = None,
                  width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """RGB frames ``(T, height, width, 3)`` uint8 of the states ``qpos (T, nq)`` of the MJX
    task ``env`` (its C model; ``env.paint(model, extras[t])`` recolours task geoms per frame).
    Raises ``RenderUnavailable`` (one line) when no offscreen GL context can be made."""
    model = copy.deepcopy(env.mj_model)  # paint() recolours geoms: never the env's own model
    data = mujoco.MjData(model)
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as e:  # noqa: BLE001 - GL set-up errors come in several types
        raise RenderUnavailable(why_unavailable(e)) from None
    cam = default_camera(model)
    frames = np.zeros((len(qpos), height, width, 3), np.uint8)
    try:
        for t, q in enumerate(np.asarray(qpos)):
            data.qpos[:] = q
            if extras is not None and extras.shape[-1]:
                env.paint(model, np.asarray(extras[t]))
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam)
            frames[t] = renderer.render()
    finally:
        renderer.close()
    return frames


class RenderUnavailable(RuntimeError):
    """No offscreen OpenGL context: the message says which variable / package to set up."""


def why_unavailable(err: BaseException) -> str:
    gl = os.environ.get("MUJOCO_GL", "") or "glfw (default)"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"rendering is not available (MUJOCO_GL={gl}: {first}); headless machines need "
            "EGL (apt-get install libegl1, MUJOCO_GL=egl) or OSMesa (apt-get install "
            "libosmesa6, MUJOCO_GL=osmesa)")


def check_rendering() -> str | None:
    """``None`` when an offscreen frame can be rendered here, else the one-line reason."""
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><geom type='sphere' size='.1'/></worldbody></mujoco>")
    try:
        r = mujoco.Renderer(model, 16, 16)
    except Exception as e:  # noqa: BLE001
        return why_unavailable(e)
    try:
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        r.update_scene(data)
        r.render()
    except Exception as e:  # noqa: BLE001
        return why_unavailable(e)
    finally:
        r.close()
    return None


def episode_frames(rec: Recording, episode: int, frame_skip: int = 1) -> np.ndarray:
    """Frame indices of one recorded episode: every ``frame_skip``-th valid frame, the last
    valid one (the outcome) always included."""
    valid = np.flatnonzero(np.asarray(rec.valid[episode]))
    idx = valid[:: max(int(frame_skip), 1)]
    return idx if idx[-1] == valid[-1] else np.append(idx, valid[-1])


def mp4_available() -> bool:
    """imageio with its ffmpeg binary (``pip install imageio imageio-ffmpeg``) is installed."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def write_video(frames: np.ndarray, path: str | pathlib.Path, fps: float = 20.0,
                fmt: str | None = None) -> pathlib.Path:
    """Encode ``frames (T, H, W, 3)`` uint8 at ``path`` with the suffix replaced: ``.mp4``
    (imageio + imageio-ffmpeg) or ``.gif`` (Pillow); ``fmt`` ('mp4' / 'gif') forces one.
    Written to a temporary name first, so a kill never leaves a half-written video under the
    final name."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames, np.uint8)
    fmt = fmt or ("mp4" if mp4_available() else "gif")
    if fmt not in ("mp4", "gif"):
        raise ValueError(f"video format must be 'mp4' or 'gif', got {fmt!r}")
    if fmt == "mp4":
        import imageio.v2 as imageio

        out = path.with_suffix(".mp4")
        tmp = out.with_name(out.stem + ".tmp.mp4")
        # macro_block_size 1: frame sizes that are not multiples of 16 stay as they are
        imageio.mimwrite(tmp, list(frames), fps=fps, macro_block_size=1)
    else:
        from PIL import Image

        out = path.with_suffix(".gif")
        tmp = out.with_name(out.stem + ".tmp.gif")
        images = [Image.fromarray(f) for f in frames]
        images[0].save(tmp, save_all=True, append_images=images[1:], loop=0,
                       duration=max(int(round(1000 / fps)), 20))
    tmp.replace(out)
    return out
