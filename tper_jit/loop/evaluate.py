"""The evaluation of a run, built from its ``TaskSpec``: one callable for every env kind.

``build_evaluator(cfg, task, acfg, seeds)`` returns ``evaluate(agents, step) -> [row per
seed]`` (``agents`` stacked ``(S, ...)`` when S > 1), or None when the task has no simulator
or ``--eval_interval=0``.  The driver calls it during the offline phase (every
``--eval_interval`` gradient steps and at the phase's end) and the online phase alike, also
for ``--online_steps=0`` runs, so offline-only numbers have an evaluation as in QC.

- MJX tasks: every seed's agent in one jitted, vmapped rollout of ``--eval_episodes`` envs;
  key of seed s at a step = ``fold_in(fold_in(PRNGKey(seed_s), 3), step)``.
- Host tasks (OGBench, robosuite): ``--eval_episodes`` episodes per seed on one host venv of
  ``--eval_envs`` envs, in rounds (``host.make_host_eval``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from tper_jit.agents import registry
from tper_jit.loop import seeds
from tper_jit.loop.host import make_host_eval, make_host_eval_venv
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.evaluation import acfql_policy, make_evaluate
from tper_jit.tasks.resolve import TaskSpec

Evaluator = Callable[[Any, int], list[dict[str, float]]]


def build_evaluator(cfg: Any, task: TaskSpec, acfg: Any, seed_list: Sequence[int],
                    eval_fn: Callable[[Any, int], dict[str, float]] | None = None
                    ) -> Evaluator | None:
    """The run's evaluation (see the module docstring); ``eval_fn(agent, step) -> row``
    replaces the task's own (called per seed)."""
    n = len(seed_list)
    if eval_fn is not None:
        return lambda agents, step: [eval_fn(seeds.index(agents, s, n), step) for s in range(n)]
    if not cfg.eval_interval or not task.has_env:
        return None
    if task.on_host:
        venv = make_host_eval_venv(cfg, seed_list[0])  # reset per evaluation from each seed
        per_seed = [make_host_eval(cfg, acfg, s, venv) for s in seed_list]
        return lambda agents, step: [fn(seeds.index(agents, s, n), step, s)
                                     for s, fn in enumerate(per_seed)]
    return _mjx_evaluator(cfg, acfg, tuple(seed_list), task.mjx_name)


def _mjx_evaluator(cfg: Any, acfg: Any, seed_list: tuple[int, ...], env_name: str
                   ) -> Evaluator:
    eval_venv = mjx_tasks.make_vec_env(env_name, cfg.eval_episodes)
    h_exec = registry.exec_horizon(acfg)
    evaluate = make_evaluate(eval_venv, h_exec,
                             acfql_policy(h_exec, registry.act_fn(acfg, evaluation=True)))
    base = [jax.random.fold_in(jax.random.PRNGKey(s), 3) for s in seed_list]
    if len(seed_list) == 1:
        def run_one(agent, step):
            res = evaluate(agent, jax.random.fold_in(base[0], step))
            return [{k: float(v) for k, v in res.items()}]
        return run_one
    many = jax.jit(jax.vmap(evaluate))

    def run_many(agents, step):
        keys = jax.numpy.stack([jax.random.fold_in(k, step) for k in base])
        res = jax.device_get(many(agents, keys))
        return [{k: float(v[s]) for k, v in res.items()} for s in range(len(seed_list))]
    return run_many
