"""``--agent.precision=bf16``: bfloat16 matmul inputs with float32 accumulation, forward and
backward, parameters and everything else in float32; the update stays close to float32's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.agents import acfql
from tper_jit.agents.networks import Critic
from tper_jit.agents.precision import bf16_dot_general, bf16_matmul, dot_general_for
from tper_jit.replay.gather import ChunkBatch

BF = jnp.bfloat16


def _xwg(seed=0, b=64, i=48, o=40):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return (jax.random.normal(k1, (b, i)), jax.random.normal(k2, (i, o)) / np.sqrt(i),
            jax.random.normal(k3, (b, o)))


def test_forward_and_both_gradients_are_bf16_products_with_f32_accumulation():
    x, w, g = _xwg()
    y, vjp = jax.vjp(bf16_matmul, x, w)
    dx, dw = vjp(g)
    assert y.dtype == dx.dtype == dw.dtype == jnp.float32
    # the same products written out by hand: inputs rounded to bf16, exact f32 accumulation
    xb, wb, gb = (np.asarray(a.astype(BF).astype(jnp.float32), np.float64) for a in (x, w, g))
    np.testing.assert_allclose(y, xb @ wb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, gb @ wb.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, xb.T @ gb, rtol=1e-5, atol=1e-5)
    # and differ from float32 by bf16 rounding only (2^-8 relative per input), not more
    ref = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    err = np.abs(np.asarray(y) - ref).max() / np.abs(ref).max()
    assert 1e-5 < err < 2e-2


def test_dense_contraction_with_leading_axes_and_under_vmap():
    x, w, _ = _xwg(1)
    x3 = x.reshape(4, 16, -1)
    dims = (((2,), (0,)), ((), ()))
    np.testing.assert_allclose(bf16_dot_general(x3, w, dims).reshape(64, -1),
                               bf16_matmul(x, w), rtol=1e-6)
    with pytest.raises(ValueError, match="Dense contractions only"):
        bf16_dot_general(x, w.T, (((0,), (1,)), ((), ())))
    with pytest.raises(ValueError, match="precision"):
        dot_general_for("fp8")
    # an ensemble critic (nn.vmap over members) runs through the custom gradient
    obs, act = x[:, :28], jnp.tanh(x[:, 28:38])
    f32, b16 = Critic((32, 32), 2, True, "f32"), Critic((32, 32), 2, True, "bf16")
    params = f32.init(jax.random.PRNGKey(0), obs, act)
    assert jax.tree.structure(params) == jax.tree.structure(b16.init(jax.random.PRNGKey(0),
                                                                     obs, act))
    qa, qb = f32.apply(params, obs, act), b16.apply(params, obs, act)
    assert qb.dtype == jnp.float32 and qb.shape == (2, 64)
    np.testing.assert_allclose(qb, qa, rtol=0.05, atol=0.05)
    ga = jax.grad(lambda p: f32.apply(p, obs, act).sum())(params)
    gb = jax.grad(lambda p: b16.apply(p, obs, act).sum())(params)
    for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        assert b.dtype == jnp.float32
        np.testing.assert_allclose(b, a, rtol=0.1, atol=0.05 * float(jnp.abs(a).max()) + 1e-6)


def test_bf16_update_keeps_f32_state_and_tracks_the_f32_losses():
    b, h, d, a = 32, 3, 12, 2
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    batch = ChunkBatch(
        observations=jax.random.normal(k[0], (b, d)),
        actions=jax.random.uniform(k[1], (b, h, a), minval=-1, maxval=1),
        rewards=-jnp.ones((b, h)), masks=jnp.ones((b, h)), terminals=jnp.zeros((b, h)),
        valid=jnp.ones((b, h)), next_observations=jax.random.normal(k[2], (b, d)),
        next_actions=jnp.zeros((b, h, a)), next_actions_valid=jnp.zeros((b,)),
        successes=jnp.zeros((b, h)), episode_ids=jnp.zeros((b,), jnp.int32),
        starts=jnp.zeros((b,), jnp.int32))
    out = {}
    for prec in ("f32", "bf16"):
        cfg = acfql.ACFQLConfig(hidden_dims=(64, 64), horizon_length=h, batch_size=b,
                                flow_steps=3, precision=prec)
        agent = acfql.init(jax.random.PRNGKey(0), d, a, cfg)
        for _ in range(3):
            agent, metrics, _ = jax.jit(acfql.update)(agent, batch, k[3])
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(agent.params))
        assert all(x.dtype in (jnp.float32, jnp.int32)
                   for x in jax.tree.leaves(agent.opt_state))
        out[prec] = {n: float(v) for n, v in metrics.items() if n.endswith("_loss")}
    for name, v in out["f32"].items():
        assert np.isfinite(out["bf16"][name])
        assert out["bf16"][name] == pytest.approx(v, rel=0.05, abs=0.02), name
    assert out["bf16"] != out["f32"]  # the option really changes the arithmetic


VMAPPED = """
import jax, jax.numpy as jnp
from tper_jit.agents import acfql
from tper_jit.replay.gather import ChunkBatch
b, h, d, a = 128, 5, 19, 5
k = jax.random.split(jax.random.PRNGKey(3), 4)
z = lambda *s: jnp.zeros(s)
batch = ChunkBatch(observations=jax.random.normal(k[0], (b, d)),
                   actions=jax.random.uniform(k[1], (b, h, a), minval=-1, maxval=1),
                   rewards=-jnp.ones((b, h)), masks=jnp.ones((b, h)), terminals=z(b, h),
                   valid=jnp.ones((b, h)), next_observations=jax.random.normal(k[2], (b, d)),
                   next_actions=z(b, h, a), next_actions_valid=z(b), successes=z(b, h),
                   episode_ids=jnp.zeros((b,), jnp.int32), starts=jnp.zeros((b,), jnp.int32))
cfg = acfql.ACFQLConfig(hidden_dims=(64, 64), horizon_length=h, batch_size=b, flow_steps=2,
                        precision="bf16")
agents = jax.vmap(lambda kk: acfql.init(kk, d, a, cfg))(jax.random.split(k[3], 3))
batches = jax.tree.map(lambda x: jnp.stack([x] * 3), batch)
_, m, _ = jax.jit(jax.vmap(acfql.update))(agents, batches, jax.random.split(k[3], 3))
print("VMAPPED_OK", float(m["critic/critic_loss"][0]))
"""


def test_vmapped_seeds_compile_in_a_separate_process():
    # XLA CPU aborts the process (ynn_emitter Check failed) compiling batched bf16 dots of
    # this exact program when the matmuls are left to vmap: a subprocess keeps an abort from
    # taking the test worker down with it
    import os
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", VMAPPED], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert p.returncode == 0 and "VMAPPED_OK" in p.stdout, p.stderr[-2000:]


def test_precision_flag_is_checked():
    from tper_jit.agents import registry
    from tper_jit.cli import parse_args

    cfg = registry.agent_config(parse_args(["--agent.precision=bf16"]))
    assert cfg.precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        acfql.ACFQLConfig(precision="f16")
    with pytest.raises(ValueError, match="transformer critic runs in f32"):
        acfql.ACFQLConfig(precision="bf16", critic="transformer")
