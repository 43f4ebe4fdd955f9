"""Flag parsing: the seed's flags, --agent.* overrides, presets, and clear errors."""

import pytest

from tper_jit.agents.registry import agent_config
from tper_jit.cli import parse_args


def test_seed_readme_flags_parse():
    argv = ["--env_name=square-mh-low", "--run_group=tper", "--use_ptr_backward=True",
            "--use_ptr_online_priority=True", "--sparse=False", "--agent.alpha=100",
            "--horizon_length=5", "--metric=td_error_rank", "--cluster_sampler=True",
            "--entity=me", "--offline_steps=1000000", "--online_steps", "1000000"]
    cfg = parse_args(argv)
    assert cfg.env_name == "square-mh-low" and cfg.use_ptr_backward and cfg.cluster_sampler
    assert cfg.offline_steps == 1_000_000 and cfg.online_steps == 1_000_000
    assert cfg.agent == {"alpha": 100.0}
    acfg = agent_config(cfg)
    assert acfg.alpha == 100.0 and acfg.horizon_length == 5


def test_agent_overrides_are_typed_and_checked():
    cfg = parse_args(["--agent.hidden_dims=64,64", "--agent.q_agg=min",
                      "--agent.layer_norm=False"])
    acfg = agent_config(cfg)
    assert acfg.hidden_dims == (64, 64) and acfg.q_agg == "min" and not acfg.layer_norm
    with pytest.raises(ValueError, match="did you mean --agent.alpha"):
        parse_args(["--agent.alhpa=3"])
    with pytest.raises(ValueError, match="q_agg"):
        agent_config(parse_args(["--agent.q_agg=median"]))
    with pytest.raises(ValueError, match="--horizon_length"):
        agent_config(parse_args(["--agent.horizon_length=3"]))


@pytest.mark.parametrize("argv,msg", [
    (["--metirc=uniform"], "did you mean --metric"),
    (["--metric=td"], "--metric must be one of"),
    (["--sparse=maybe"], "--sparse expects True or False"),
    (["--cluster_k=zero"], "--cluster_k"),
    (["--offline_steps=-1"], "--offline_steps"),
    (["--discount=1.5"], "--discount"),
    (["--eval_envs=-2"], "--eval_envs"),
    (["--log_interval"], "needs a value"),
    (["--config", "/nonexistent/preset.py"], "no such preset"),
])
def test_bad_flags_fail_with_one_clear_message(argv, msg):
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        parse_args(argv)


def test_backward_bool_and_preset(tmp_path):
    assert parse_args(["--backward=True"]).backward == "last"
    assert parse_args(["--backward=False"]).backward == "none"
    assert parse_args(["--backward=sweep"]).backward == "sweep"
    preset = tmp_path / "p.py"
    preset.write_text("def get_config():\n    return {'offline_steps': 7, 'metric': 'uniform',"
                      " 'agent': {'alpha': 3.0}}\n")
    cfg = parse_args(["--config", str(preset), "--offline_steps=9"])
    assert cfg.offline_steps == 9 and cfg.metric == "uniform" and cfg.agent == {"alpha": 3.0}
    assert parse_args(["--cluster_k=7"]).cluster_k_value == 7


def test_ptr_refresh_fraction_reaches_the_tper_config():
    from tper_jit.loop.sampling import tper_config

    assert tper_config(parse_args([])).refresh_fraction == 1 / 16
    assert tper_config(parse_args(["--ptr_refresh_fraction=0"])).refresh_fraction == 0.0
    with pytest.raises(ValueError, match="ptr_refresh_fraction"):
        parse_args(["--ptr_refresh_fraction=1.5"])
