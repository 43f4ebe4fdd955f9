"""Evaluation videos: the recording rollout plays the evaluation's episodes, headless
rendering gives changing frames, both encoders write readable files, the puzzle lights are
painted, and failures become one line instead of a crash."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs_mjx import core, registry, render
from envs_mjx.wrappers import ChunkedVecEnv, EpisodeWrapper
from tper_jit.loop.video import VideoRecorder, tile
from tper_jit.tasks.evaluation import make_evaluate

M, H = 6, 5
pytestmark = pytest.mark.skipif(render.check_rendering() is not None,
                                reason=str(render.check_rendering()))


def steer_policy():
    """A cheap stateless policy (cheap to compile, unlike the oracles): steer the gripper
    towards the reach goal (obs[12:15] = goal − ee) with noise, so some episodes succeed
    early and some run to the time limit."""
    def init(_, env_state, key):
        return ()

    def step(_, pstate, env_state, key):
        to_goal = env_state.obs[:, 12:15] / core.POS_SCALE
        noise = 2.0 * jax.random.normal(key, (env_state.obs.shape[0], H, 3))
        move = jnp.clip(0.3 * to_goal[:, None] + noise, -1, 1)
        actions = jnp.concatenate([move, jnp.zeros(move.shape[:2] + (2,))], -1)
        return pstate, actions

    return init, step


@pytest.fixture(scope="module")
def reach_recording():
    base = registry.make("reach")
    record = render.make_recorder(EpisodeWrapper(base), H, M, steer_policy())
    return base, record(None, jax.random.PRNGKey(3))


def test_recording_plays_the_evaluations_episodes(reach_recording):
    # same key, same policy: the recorder's episodes are the evaluation's, step for step
    base, rec = reach_recording
    res = make_evaluate(ChunkedVecEnv(base, M), H, policy=steer_policy())(
        None, jax.random.PRNGKey(3))
    valid = np.asarray(rec.valid)
    lengths = valid.sum(1) - 1  # frame 0 is the reset state
    assert float(res["eval/episode.length"]) == pytest.approx(lengths.mean())
    assert float(res["eval/success_rate"]) == pytest.approx(np.asarray(rec.success).mean())
    assert 0 < np.asarray(rec.success).mean() < 1  # both kinds of episode are in the test
    assert len(set(lengths)) > 1
    # valid frames are a prefix; after the end the state is frozen
    for i in range(M):
        n = valid[i].sum()
        assert valid[i, :n].all() and not valid[i, n:].any()
        assert np.array_equal(np.asarray(rec.qpos[i, n:]), np.repeat(rec.qpos[i, n - 1:n],
                                                                      valid.shape[1] - n, 0))


def test_two_episode_video_renders_changing_frames(reach_recording, tmp_path):
    base, rec = reach_recording
    clips = []
    for i in range(2):
        idx = render.episode_frames(rec, i, 3)
        assert idx[0] == 0 and idx[-1] == np.flatnonzero(np.asarray(rec.valid[i]))[-1]
        assert np.all(np.diff(idx)[:-1] == 3)
        frames = render.render_frames(base, rec.qpos[i][idx], rec.extras[i][idx])
        assert frames.shape == (len(idx), render.HEIGHT, render.WIDTH, 3)
        assert frames.dtype == np.uint8
        # the gripper moves: consecutive frames differ, and not only by a few pixels
        diffs = [np.abs(frames[t + 1].astype(int) - frames[t]).sum() for t in range(3)]
        assert min(diffs) > 0 and np.abs(frames[-1].astype(int) - frames[0]).mean() > 0.05
        clips.append(frames)
    grid = tile(clips)
    assert grid.shape == (max(map(len, clips)), render.HEIGHT, 2 * render.WIDTH, 3)
    short = int(np.argmin([len(c) for c in clips]))
    # the shorter episode holds its last frame in its cell
    cell = grid[:, :, short * render.WIDTH:(short + 1) * render.WIDTH]
    assert np.array_equal(cell[-1], clips[short][-1])

    from PIL import Image

    gif = render.write_video(grid, tmp_path / "v", fmt="gif")
    assert gif.name == "v.gif" and not list(tmp_path.glob("*.tmp.*"))
    with Image.open(gif) as im:
        assert im.n_frames == len(grid)
    if render.mp4_available():
        import imageio.v2 as imageio

        mp4 = render.write_video(grid, tmp_path / "v", fmt="mp4")
        back = np.stack(imageio.mimread(mp4))
        assert back.shape == grid.shape
        # lossy codec: close to the source frames, and the frames still change
        assert np.abs(back.astype(int) - grid).mean() < 8
        assert np.abs(back[-1].astype(int) - back[0]).mean() > 0.05


def test_puzzle_lights_are_painted():
    env = registry.make("puzzle-3x3-singletask-task1")
    q = np.zeros((2, env.mj_model.nq))
    q[:, 2] = 0.15
    lights = np.zeros((2, env.n_buttons), np.float32)
    lights[1] = 1.0
    frames = render.render_frames(env, q, lights)
    assert np.abs(frames[1].astype(int) - frames[0]).sum() > 1000
    # the env's own model is untouched (the renderer paints a copy)
    gid = env.mj_model.geom("button0_geom").id
    before = env.mj_model.geom_rgba[gid].copy()
    render.render_frames(env, q[1:], lights[1:])
    assert np.array_equal(env.mj_model.geom_rgba[gid], before)


def test_a_failing_video_is_one_line_and_the_run_goes_on(tmp_path, capsys):
    def broken(agent, step):
        raise render.RenderUnavailable("rendering is not available (test)")

    rec = VideoRecorder(broken, tmp_path / "videos")
    assert rec(None, 10) is None and rec(None, 20) is None  # said once, then off
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step 10" in err[0] and "continuing without videos" in err[0]
    assert not (tmp_path / "videos").exists()


def test_video_flags_are_validated():
    from tper_jit.cli import parse_args

    with pytest.raises(ValueError, match="video_frame_skip"):
        parse_args(["--video_frame_skip=0"])
    with pytest.raises(ValueError, match="video_episodes"):
        parse_args(["--video_episodes=-1"])
    cfg = parse_args(["--video_episodes=2", "--video_frame_skip=5"])
    assert (cfg.video_episodes, cfg.video_frame_skip) == (2, 5)


def test_ogbench_host_env_episode_frames():
    from tper_jit.loop.video import host_episode_frames
    from tper_jit.tasks.host_env import HostVecEnv

    venv = HostVecEnv("cube-single-play-singletask-task1-v0", 1, seed=0)
    try:
        rng = np.random.default_rng(0)
        calls = []

        def policy(ob, call):
            calls.append(call)
            return rng.uniform(-1, 1, 2 * 5)

        frames = host_episode_frames(venv.envs[0], policy, 7, 2, frame_skip=4)
        limit = venv.episode.episode_length  # 200 steps: random actions never solve it
        assert frames.shape[0] == 1 + limit // 4 and frames.shape[-1] == 3
        assert calls == list(range(limit // 2))
        assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 0.05
    finally:
        venv.close()


def test_ogbench_recorder_writes_a_clip_of_the_agents_episode(tmp_path):
    from tper_jit.agents import acfql
    from tper_jit.cli import parse_args
    from tper_jit.loop.video import build_video_recorder
    from tper_jit.tasks.resolve import resolve

    name = "cube-single-play-singletask-task1-v0"
    cfg = parse_args([f"--env_name={name}", "--video_episodes=1", "--video_frame_skip=40",
                      "--horizon_length=5", "--eval_interval=10"])
    acfg = acfql.ACFQLConfig(hidden_dims=(8,), horizon_length=5, flow_steps=1)
    agent = acfql.init(jax.random.PRNGKey(0), 28, 5, acfg)
    rec = build_video_recorder(cfg, resolve(name, None, False, strict=False), acfg, 0, tmp_path)
    path = rec(agent, 10)
    assert path is not None and path.parent == tmp_path / "videos"
    assert path.stem == "eval_00000010" and path.stat().st_size > 1000
    if path.suffix == ".mp4":
        import imageio.v2 as imageio

        # reset frame + every 40th of at most 200 steps (an untrained agent runs to the limit)
        frames = imageio.mimread(path)
        assert 2 <= len(frames) <= 6 and frames[0].shape[-1] == 3


def test_videos_reach_an_offline_wandb_run(tmp_path, monkeypatch):
    from tper_jit.run.logger import MetricLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = MetricLogger(tmp_path, {"test": 1}, use_wandb=True)
    assert logger.wandb_note == "offline"
    frames = np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    fmts = ["gif"] + (["mp4"] if render.mp4_available() else [])
    for step, fmt in enumerate(fmts, start=1):
        logger.log_video("eval/video", render.write_video(frames, tmp_path / f"v{step}",
                                                          fmt=fmt), step * 10)
    logger.close()
    media = sorted(p.suffix for p in (tmp_path / "wandb").rglob("media/videos/eval/*"))
    assert media == sorted(f".{f}" for f in fmts)
