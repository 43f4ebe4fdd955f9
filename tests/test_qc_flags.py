"""QC's command lines run here: README commands parse to what they say, QC's extra flags are
validated and mean what they mean in QC (``tper_jit.config.qc_compat``)."""

import dataclasses
import pathlib
import shlex

import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.agents import registry
from tper_jit.agents.acfql import ACFQLConfig
from tper_jit.agents.rlpd import RLPDConfig
from tper_jit.cli import _help, parse_args
from tper_jit.config.flag_help import NO_HELP, field_help
from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import take_proportion
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import store as store_mod
from tper_jit.run import online_data
from tper_jit.tasks import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "qc_readme_commands.txt"
# The script a README command runs → our flags with the same meaning.
SCRIPTS = {"main.py": [],  # QC's main.py / the seed's main.py: tper-train itself
           "main_acfql.py": [],  # the seed's baseline script: plain ACFQL
           "main_online.py": ["--config", str(ROOT / "configs" / "qc_main_online.py")]}


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(script, argv)`` of every command in the fixture: a command starts at a line running
    ``python``, its continuation lines follow until a blank or a comment line (the seed's
    baseline command lacks one ``\\`` before ``--entity``; its lines are kept together)."""
    blocks, current = [], None
    for line in FIXTURE.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            current = None
        elif " python " in f" {text}":
            current = [text.rstrip("\\")]
            blocks.append(current)
        elif current is not None:
            current.append(text.rstrip("\\"))
    out = []
    for block in blocks:
        words = shlex.split(" ".join(block))
        at = next(i for i, w in enumerate(words) if w.endswith(".py"))
        assert words[:at] == ["MUJOCO_GL=egl", "python"]
        out.append((words[at], words[at + 1:]))
    return out


def _literal(text: str):
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


COMMANDS = readme_commands()


def test_the_fixture_holds_every_readme_command():
    scripts = [s for s, _ in COMMANDS]
    assert scripts.count("main.py") == 6 + 3  # QC's six main.py rows, the seed's three
    assert scripts.count("main_online.py") == 3 and scripts.count("main_acfql.py") == 1


@pytest.mark.parametrize("script,argv", COMMANDS,
                         ids=[f"{i}-{s}" for i, (s, _) in enumerate(COMMANDS)])
def test_readme_command_parses_to_what_it_says(script, argv):
    cfg = parse_args(SCRIPTS[script] + argv)
    acfg = registry.agent_config(cfg)
    assert argv and all(a.startswith("--") and "=" in a for a in argv)
    for arg in argv:
        name, _, value = arg[2:].partition("=")
        if name.startswith("agent."):
            key = name[len("agent."):]
            assert cfg.agent[key] == _literal(value) == getattr(acfg, key), arg
        else:
            assert getattr(cfg, name) == _literal(value), arg
    assert acfg.horizon_length == cfg.horizon_length
    if script == "main_online.py":  # QC's main_online.py: RLPD from scratch, UTD 1, 1M buffer
        assert cfg.agent_type == "rlpd" and cfg.offline_steps == 0 and cfg.symmetric_sampling
        assert acfg.utd_ratio == 1 and acfg.action_chunking and cfg.buffer_size == 1_000_000
        assert acfg.hidden_dims == (512,) * 4
    else:
        assert cfg.agent_type == "acfql" and cfg.buffer_size == 2_000_000


def test_qc_agent_file_selects_the_agent():
    assert parse_args(["--agent=agents/acfql.py"]).agent_type == "acfql"
    assert parse_args(["--agent", "agents/acrlpd.py"]).agent_type == "rlpd"
    assert parse_args(["--agent=agents/acrlpd.py", "--agent_type=rlpd"]).agent_type == "rlpd"
    assert parse_args(["--agent.agent_name=acrlpd"]).agent_type == "rlpd"
    with pytest.raises(ValueError, match="--agent=agents/sac.py: QC agent config files are"):
        parse_args(["--agent=agents/sac.py"])
    with pytest.raises(ValueError, match="chosen twice.*--agent=rlpd.*--agent_type=acfql"):
        parse_args(["--agent=agents/acrlpd.py", "--agent_type=acfql"])


def test_qc_agent_keys_map_or_fail_by_name():
    cfg = parse_args(["--agent.actor_hidden_dims=(256,256)",
                      "--agent.value_hidden_dims=(256,256)", "--agent.actor_layer_norm=False",
                      "--agent.encoder=None", "--agent.normalize_q_loss=False",
                      "--agent.use_fourier_features=False", "--agent.fourier_feature_dim=64"])
    assert cfg.agent == {"hidden_dims": (256, 256)}
    rl = parse_args(["--agent=agents/acrlpd.py", "--agent.init_temp=0.5",
                     "--agent.layer_norm=False", "--agent.alpha=1.0",
                     "--agent.target_entropy_multiplier=0.5"])
    assert rl.agent == {"init_temperature": 0.5, "critic_layer_norm": False}
    for argv, match in (
            (["--agent.actor_hidden_dims=(256,256)", "--agent.value_hidden_dims=(512,512)"],
             "same widths"),
            (["--agent.actor_layer_norm=True"], "--agent.actor_layer_norm=True: the actors"),
            (["--agent.encoder=impala_small"], "--agent.encoder=impala_small: no visual"),
            (["--agent.normalize_q_loss=True"], "--agent.normalize_q_loss=True"),
            (["--agent.use_fourier_features=True"], "--agent.use_fourier_features=True"),
            (["--agent.ob_dims=(3,)"], "--agent.ob_dims=.*set from the dataset"),
            (["--agent=agents/acrlpd.py", "--agent.q_agg=mean"], "--agent.q_agg=mean"),
            (["--agent=agents/acrlpd.py", "--agent.target_entropy_multiplier=1.0"],
             "--agent.target_entropy_multiplier=1.0")):
        with pytest.raises(ValueError, match=match):
            parse_args(argv)


def test_qc_defaults_and_new_flag_validation():
    cfg = parse_args([])
    assert cfg.buffer_size == 2_000_000  # QC's main.py default
    assert (cfg.video_episodes, cfg.video_frame_skip) == (0, 3)
    assert (cfg.dataset_proportion, cfg.dataset_replace_interval) == (1.0, 1000)
    assert cfg.save_all_online_states is False
    assert parse_args(["--save_interval=-1"]).save_interval == 0  # QC's "never"
    assert parse_args(["--save_all_online_states"]).save_all_online_states is True
    assert parse_args(["--sparse", "--nosparse"]).sparse is False  # absl's --noFLAG
    assert parse_args(["--video_episodes=2", "--video_frame_skip=1"]).video_episodes == 2
    for argv, match in (
            (["--video_episodes=-1"], "--video_episodes must be >= 0"),
            (["--video_frame_skip=0"], "--video_frame_skip must be > 0"),
            (["--dataset_proportion=0"], r"--dataset_proportion must be in \(0, 1\]"),
            (["--dataset_proportion=1.5"], r"--dataset_proportion must be in \(0, 1\]"),
            (["--dataset_proportion=0.5", "--ogbench_dataset_dir=/x"],
             "--dataset_proportion must be 1.0 with --ogbench_dataset_dir"),
            (["--dataset_replace_interval=500"], "--dataset_replace_interval=500 cannot be "
                                                 "honoured"),
            (["--dataset_replace_interval=0"], "--dataset_replace_interval=0 cannot"),
            (["--save_interval=-2"], "--save_interval must be >= 0")):
        with pytest.raises(ValueError, match=match):
            parse_args(argv)


def test_help_describes_every_flag():
    text = _help()
    for cls, prefix in ((TrainConfig, "--"), (ACFQLConfig, "--agent."), (RLPDConfig, "--agent."),
                        (OPERConfig, "--oper.")):
        described = field_help(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("agent", "oper") and cls is TrainConfig:
                continue
            assert described[f.name] != NO_HELP, f"{cls.__name__}.{f.name} has no comment"
            assert any(ln.split()[0].startswith(f"{prefix}{f.name}=")
                       and ln.endswith(f"  {described[f.name]}")
                       for ln in text.splitlines() if ln.strip()), (prefix, f.name)
    assert "  --dataset_proportion=1.0" in text and "QC's cut" in text


# ----------------------------------------------------------------------- --dataset_proportion

def _write_generated_npz(path, lengths):
    """An envs_mjx-schema npz on disk (what tper-generate writes): each episode of L
    transitions stores L + 1 rows, the last one dropped by the loader."""
    cols = {k: [] for k in ("observations", "actions", "terminals", "rewards", "masks",
                            "successes")}
    for e, n in enumerate(lengths):
        cols["observations"].append(100 * e + np.arange(n + 1, dtype=np.float32)[:, None]
                                    .repeat(3, 1))
        cols["actions"].append(np.zeros((n + 1, 2)))
        cols["terminals"].append(np.eye(n + 1)[-1].astype(bool))
        cols["rewards"].append(np.zeros(n + 1))
        cols["masks"].append(np.ones(n + 1))
        cols["successes"].append(np.zeros(n + 1))
    np.savez(path, **{k: np.concatenate(v) for k, v in cols.items()})


@pytest.mark.parametrize("proportion,kept,episodes,cut", [
    (1.0, 12, 3, False),
    (0.5, 6, 2, True),  # int(12 · 0.5) = 6: episode 1 (4) + 2 rows of episode 2, cut there
    (0.6, 7, 2, False),  # int(7.2) = 7: exactly episodes 1 and 2
    (0.1, 1, 1, True)])
def test_dataset_proportion_keeps_qcs_first_rows(tmp_path, proportion, kept, episodes, cut):
    path = tmp_path / "lift.npz"
    _write_generated_npz(path, [4, 3, 5])  # 12 transitions
    cfg = parse_args(["--env_name=lift", f"--dataset_path={path}",
                      f"--dataset_proportion={proportion}"])
    ds = datasets.load_dataset(cfg)
    full = datasets.load_dataset(parse_args(["--env_name=lift", f"--dataset_path={path}"]))
    assert len(full) == 12 and full.num_episodes == 3
    assert len(ds) == kept == int(len(full) * proportion)  # QC: new_size = int(N · p)
    assert ds.num_episodes == episodes == int(ds.terminals.sum())
    assert ds.meta.num_transitions == kept
    np.testing.assert_array_equal(ds.observations, full.observations[:kept])
    np.testing.assert_array_equal(ds.masks, full.masks[:kept])
    assert ds.terminals[-1] == 1 and (full.terminals[kept - 1] == 0) == cut
    np.testing.assert_array_equal(ds.terminals[:-1], full.terminals[:kept - 1])
    options = ds.meta.options_dict()
    assert options.get("dataset_proportion") == (proportion if proportion < 1 else None)


def test_dataset_proportion_that_keeps_nothing_fails(tmp_path):
    path = tmp_path / "lift.npz"
    _write_generated_npz(path, [4, 3, 5])
    ds = datasets.load_dataset(parse_args(["--env_name=lift", f"--dataset_path={path}"]))
    with pytest.raises(ValueError, match="keeps 0 of its 12 transitions"):
        take_proportion(ds, 0.05)


# ----------------------------------------------------------------------- --save_all_online_states

def test_stream_rows_unroll_each_ring_in_write_order():
    row, stream, step = online_data.stream_rows(np.array([3, 7]), rows_per_stream=5)
    # stream 0: 3 rows in [0, 5); stream 1 wrapped: steps 2..6 at ring rows 2,3,4,0,1 of [5, 10)
    np.testing.assert_array_equal(row, [0, 1, 2, 7, 8, 9, 5, 6])
    np.testing.assert_array_equal(stream, [0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(step, [0, 1, 2, 2, 3, 4, 5, 6])


class _Rest:  # the driver's state: only .replay.store is read
    def __init__(self, store):
        self.replay = type("Replay", (), {"store": store})()


def test_online_states_file_holds_every_online_transition(tmp_path):
    off = np.zeros((4, 2), np.float32)
    st = store_mod.build(off, np.zeros((4, 1)), np.zeros(4), np.array([0, 0, 0, 1.0]), off,
                         num_streams=2, rows_per_stream=6, max_episode_length=3)
    t = 8  # steps per stream: stream 0 writes all 8 (the ring keeps 6), stream 1 skips two
    write = np.ones((2, t), bool)
    write[1, [0, 4]] = False
    obs = np.stack([np.arange(t) + 10 * s for s in range(2)]).astype(np.float32)  # (2, T)
    ends = np.zeros((2, t), bool)
    ends[:, 2::3] = True  # episodes of 3 steps
    st = store_mod.add_steps(st, jnp.asarray(obs[..., None].repeat(2, -1)), jnp.zeros((2, t, 1)),
                             jnp.asarray(-obs), jnp.zeros((2, t), bool), jnp.asarray(ends),
                             jnp.asarray(obs[..., None].repeat(2, -1) + 0.5),
                             jnp.zeros((2, t)), jnp.asarray(write))
    (path,) = online_data.save_online_states(tmp_path, _Rest(st), (0,))
    assert path == tmp_path / "data.npz"
    with np.load(path) as f:
        got = dict(f)
    kept0, kept1 = obs[0][2:], obs[1][write[1]]  # stream 0: the newest 6 of 8
    np.testing.assert_array_equal(got["observations"][:, 0], np.concatenate([kept0, kept1]))
    np.testing.assert_array_equal(got["next_observations"][:, 0],
                                  np.concatenate([kept0, kept1]) + 0.5)
    np.testing.assert_array_equal(got["rewards"], -np.concatenate([kept0, kept1]))
    np.testing.assert_array_equal(got["stream"], [0] * 6 + [1] * 6)
    np.testing.assert_array_equal(got["stream_step"], [2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(got["terminals"], np.concatenate([ends[0][2:],
                                                                     ends[1][write[1]]]))
    assert set(got) == {*online_data.FIELDS, "stream", "stream_step"}


def test_no_online_phase_writes_no_file(tmp_path):
    off = np.zeros((4, 2), np.float32)
    st = store_mod.build(off, np.zeros((4, 1)), np.zeros(4), np.array([0, 0, 0, 1.0]), off)
    assert online_data.save_online_states(tmp_path, _Rest(st), (0,)) == []
    assert not (tmp_path / "data.npz").exists()
