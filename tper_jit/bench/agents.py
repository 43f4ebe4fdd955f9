"""Rows of ``python -m tper_jit.bench update`` for the other agents and options.

Each row is the fused pattern (sample → gather → ``update`` inside one jitted ``lax.scan``,
state donated) on the same data, batch size, horizon and hidden widths as the ACFQL rows,
measured in the same run, reported as updates/s, gradient steps/s and the cost of one
gradient step relative to fused ACFQL (RLPD's update is a UTD block of ``utd_ratio`` critic
steps plus one actor and one temperature step; its gradient steps are its critic steps).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.agents import acfql, registry, rlpd
from tper_jit.bench.timing import time_calls
from tper_jit.loop.learn_step import LearnCarry, learn_step, make_learn_spec
from tper_jit.oper import weights
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import samplers, store

AGENT_ROWS = ("acfql-transformer", "acfql-oper-reweight", "rlpd", "rlpd-ac", "qc-rlpd")


def _config(name: str, args):
    hidden = tuple(args.hidden)
    if name.startswith("acfql"):
        extra = {}
        if name == "acfql-transformer":
            extra = {"critic": "transformer", "critic_d_model": args.critic_d_model,
                     "critic_num_heads": args.critic_heads,
                     "critic_num_layers": args.critic_layers}
        return acfql.ACFQLConfig(hidden_dims=hidden, horizon_length=args.horizon,
                                 batch_size=args.batch, **extra)
    preset = rlpd.PRESETS[name]
    h = 1 if name == "rlpd" else args.horizon
    return rlpd.RLPDConfig(**{**preset.__dict__, "hidden_dims": hidden, "horizon_length": h,
                              "batch_size": args.batch, "utd_ratio": args.utd})


def time_agent(name: str, args, obs, act, rew, term) -> dict[str, float]:
    """Fused updates/s of agent row ``name`` on the benchmark's data."""
    cfg = _config(name, args)
    spec = registry.spec_of(cfg)
    h = cfg.horizon_length
    ocfg = OPERConfig(reweight=True) if name == "acfql-oper-reweight" else None
    st = store.build(obs, act, rew, term, obs)
    scfg = samplers.SamplerConfig(kind="transition", horizon=h)
    probs = None
    if ocfg is not None:
        raw = weights.oper_r_weights(rew, term, ocfg.base_prob)
        probs = weights.normalize_priorities(raw, std=ocfg.std, eps=ocfg.eps)
    replay = samplers.init_replay(st, scfg, oper_probs=probs)
    rows = spec.rows_per_update(cfg)
    agent = spec.init(jax.random.PRNGKey(args.seed), obs.shape[1], act.shape[1], cfg)
    # the trainer's own learning step (OPER reweighting as its hook)
    lspec = make_learn_spec(spec, cfg, scfg, "bench", oper=ocfg)

    def step(carry, _):
        agent, replay, key = carry
        key, k_s, k_u = jax.random.split(key, 3)
        out, metrics = learn_step(lspec, LearnCarry(agent=agent, replay=replay),
                                  jnp.stack([k_s, k_u]))
        return (out.agent, out.replay, key), metrics["bench/critic/critic_loss"]

    fused = jax.jit(lambda c: jax.lax.scan(step, c, None, length=args.chunk),
                    donate_argnums=0)
    _, compile_s, times = time_calls(fused, (agent, replay, jax.random.PRNGKey(2)),
                                     args.repeats)
    per_update = float(np.median(times)) / args.chunk
    grad_steps = rows // cfg.batch_size  # critic steps per update (RLPD: its UTD)
    return {"updates_per_s": 1 / per_update, "grad_steps_per_s": grad_steps / per_update,
            "compile_s": compile_s}


def print_rows(args, obs, act, rew, term, acfql_fused_s: float) -> dict[str, dict]:
    """Time every row of ``args.agents`` and print them against fused ACFQL."""
    out = {}
    print(f"{'agent (fused chunk)':<34} | {'updates/s':>9} | {'grad st/s':>9} | "
          f"{'cost/grad step vs ACFQL':>23} | {'compile s':>9}")
    print("-" * 98)
    for name in args.agents:
        r = time_agent(name, args, obs, act, rew, term)
        r["cost_vs_acfql"] = (1 / r["grad_steps_per_s"]) / acfql_fused_s
        out[name] = r
        label = name
        if name == "acfql-transformer":
            label += f" (d {args.critic_d_model}, {args.critic_layers} blk)"
        print(f"{label:<34} | {r['updates_per_s']:>9.2f} | {r['grad_steps_per_s']:>9.2f} | "
              f"{r['cost_vs_acfql']:>22.2f}x | {r['compile_s']:>9.1f}")
    return out
