"""Evaluation videos (QC's ``--video_episodes`` / ``--video_frame_skip``).

At each evaluation the first seed's evaluation actor plays ``--video_episodes`` extra
episodes that are rendered and not counted in the statistics; every ``--video_frame_skip``-th
env step becomes a frame (the last one always), the episodes are tiled side by side into one
clip ``RUN_DIR/videos/eval_<step>.mp4`` (``.gif`` without an MP4 encoder) and logged to
wandb as ``eval/video``.

- MJX tasks: a separate jitted rollout records the physics states; the host renders them
  afterwards (``envs_mjx.render``), so the jitted evaluation stays pure and unchanged.
- OGBench host envs: one extra env of the task, drawn with its own ``render()``.
- robosuite envs are built without a renderer here: no videos (said once at start).

Video episodes draw keys / reset seeds from their own stream (tag 4), so they change neither
the evaluation nor the training: a run with videos logs the same metrics as one without.
If no offscreen OpenGL context exists, or an evaluation's video fails, the run says so in
one line and goes on without videos.
"""

from __future__ import annotations

import math
import pathlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs_mjx import render
from tper_jit.agents import registry
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.evaluation import acfql_policy
from tper_jit.tasks.resolve import TaskSpec

FPS = 20.0


def tile(clips: list[np.ndarray]) -> np.ndarray:
    """Episodes ``[(T_i, H, W, 3)]`` -> one clip ``(max T_i, rows·H, cols·W, 3)``: a grid of
    ``ceil(sqrt(n))`` columns, shorter episodes holding their last frame, empty cells black."""
    n = len(clips)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    t = max(len(c) for c in clips)
    h, w = clips[0].shape[1:3]
    out = np.zeros((t, rows * h, cols * w, 3), np.uint8)
    for i, c in enumerate(clips):
        r, q = divmod(i, cols)
        held = np.concatenate([c, np.repeat(c[-1:], t - len(c), 0)]) if len(c) < t else c
        out[:, r * h:(r + 1) * h, q * w:(q + 1) * w] = held
    return out


class VideoRecorder:
    """``recorder(agent, step) -> path | None``: render, tile, write, return the file."""

    def __init__(self, clips: Callable[[Any, int], list[np.ndarray]], out_dir: pathlib.Path,
                 out=None):
        self.clips, self.out_dir, self.out = clips, pathlib.Path(out_dir), out
        self.enabled = True

    def __call__(self, agent: Any, step: int) -> pathlib.Path | None:
        if not self.enabled:
            return None
        try:
            frames = tile(self.clips(agent, step))
            with warnings.catch_warnings():
                # the MP4 encoder is a child process; JAX warns about any fork in its process
                warnings.filterwarnings("ignore", message=".*os.fork", category=RuntimeWarning)
                return render.write_video(frames, self.out_dir / f"eval_{step:08d}", FPS)
        except Exception as e:  # noqa: BLE001 - a video must never stop training
            self.enabled = False
            print(f"--video_episodes: the video at step {step} failed "
                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  "continuing without videos", file=self.out or sys.stderr, flush=True)
            return None


def _mjx_clips(cfg: Any, acfg: Any, seed: int, env_name: str
               ) -> Callable[[Any, int], list[np.ndarray]]:
    venv = mjx_tasks.make_vec_env(env_name, 1)
    env = venv.episode
    h = registry.exec_horizon(acfg)
    record = render.make_recorder(env, h, cfg.video_episodes,
                                  acfql_policy(h, registry.act_fn(acfg, evaluation=True)))
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 4)

    def clips(agent, step):
        rec = jax.device_get(record(agent, jax.random.fold_in(base, step)))
        idx = [render.episode_frames(rec, i, cfg.video_frame_skip)
               for i in range(cfg.video_episodes)]
        # one renderer (GL context, model copy) for all episodes of the evaluation
        frames = render.render_frames(
            env.env, np.concatenate([rec.qpos[i][ix] for i, ix in enumerate(idx)]),
            np.concatenate([rec.extras[i][ix] for i, ix in enumerate(idx)]))
        return np.split(frames, np.cumsum([len(ix) for ix in idx])[:-1])

    return clips


def host_episode_frames(gym_env: Any, policy: Callable[[np.ndarray, int], np.ndarray],
                        reset_seed: int, horizon_exec: int, frame_skip: int) -> np.ndarray:
    """One episode of a gymnasium env drawn with its own ``render()``: frames ``(T, H, W, 3)``
    of the reset state, every ``frame_skip``-th step and the last step (QC's rule).
    ``policy(obs (D,), call index) -> actions (H · A,)``, executed open-loop per chunk."""
    ob, _ = gym_env.reset(seed=int(reset_seed))
    frames, t, call, done = [gym_env.render()], 0, 0, False
    while not done:
        chunk = np.asarray(policy(ob, call)).reshape(horizon_exec, -1)
        for a in chunk:
            ob, _, term, trunc, _ = gym_env.step(np.clip(a, -1.0, 1.0))
            t += 1
            done = bool(term or trunc)
            if done or t % max(frame_skip, 1) == 0:
                frames.append(gym_env.render())
            if done:
                break
        call += 1
    return np.stack(frames).astype(np.uint8)


def _ogbench_clips(cfg: Any, acfg: Any, seed: int) -> Callable[[Any, int], list[np.ndarray]]:
    from tper_jit.tasks.host_env import HostVecEnv

    venv = HostVecEnv(cfg.env_name, 1, seed=seed, dataset_path=cfg.dataset_path or None)
    h = registry.exec_horizon(acfg)
    act = jax.jit(registry.act_fn(acfg, evaluation=True))
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 4)

    def clips(agent, step):
        out = []
        for i in range(cfg.video_episodes):
            key = jax.random.fold_in(jax.random.fold_in(base, step), i)

            def policy(ob, call, key=key):
                obs = jnp.asarray(ob[None], jnp.float32)
                return np.asarray(act(agent, obs, jax.random.fold_in(key, call)))

            reset = np.random.SeedSequence([seed, 4, step, i]).generate_state(1)[0]
            out.append(host_episode_frames(venv.envs[0], policy, reset, h,
                                           cfg.video_frame_skip))
        return out

    return clips


def build_video_recorder(cfg: Any, task: TaskSpec, acfg: Any, seed: int,
                         run_dir: pathlib.Path, out=None) -> VideoRecorder | None:
    """The run's video recorder (module docstring), or None — with one line saying why —
    when ``--video_episodes`` is 0, there is no evaluation, or nothing can be rendered."""
    if not cfg.video_episodes or not cfg.eval_interval or not task.has_env:
        return None
    say = out or sys.stdout
    if task.simulator == "robosuite-host":
        print(f"--video_episodes={cfg.video_episodes}: robosuite envs run without a renderer "
              "here; no videos", file=say)
        return None
    reason = render.check_rendering()
    if reason is not None:
        print(f"--video_episodes={cfg.video_episodes}: {reason}; continuing without videos",
              file=say)
        return None
    clips = (_ogbench_clips(cfg, acfg, seed) if task.on_host
             else _mjx_clips(cfg, acfg, seed, task.mjx_name))
    return VideoRecorder(clips, run_dir / "videos", out=say)
