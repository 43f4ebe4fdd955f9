"""The outer Python loop: set-up once, then jitted chunks, logging between chunks.

Offline phase: chunks of ``--log_interval`` gradient steps.  Online phase (MJX tasks):
chunks of ``--log_interval // (num_envs · H)`` iterations, each iteration one action chunk
per env plus ``utd_ratio · num_envs · H`` gradient steps.  Evaluation runs at the first chunk
boundary at or after each multiple of ``--eval_interval`` (offline: gradient steps; online:
env steps) and at the end of each phase.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from tper_jit.data.common import FlatDataset
from tper_jit.train import checkpoint, data_setup, env_setup
from tper_jit.train.config import TrainConfig
from tper_jit.train.logger import MetricLogger, Progress, make_run_dir
from tper_jit.train.offline import host_metrics, make_offline_trainer

OFFLINE_KEYS = ("offline_agent/critic/critic_loss", "offline_agent/actor/bc_flow_loss",
                "offline_agent/critic/q_mean", "eval/success_rate")


@dataclasses.dataclass
class RunResult:
    run_dir: pathlib.Path
    state: Any  # final TrainState / OnlineState
    metrics: list[dict[str, float]]  # one row per chunk
    cluster_png: pathlib.Path | None


def _jsonable(x):
    if dataclasses.is_dataclass(x):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _store_kwargs(cfg: TrainConfig, venv) -> dict:
    if venv is None or not cfg.online_steps:
        return {}
    rows = max(cfg.buffer_size // cfg.num_envs, venv.episode.episode_length)
    return {"num_streams": cfg.num_envs, "rows_per_stream": rows,
            "max_episode_length": venv.episode.episode_length}


def train(cfg: TrainConfig, dataset: FlatDataset | None = None,
          eval_fn: Callable[[Any, int], dict[str, float]] | None = None,
          out=None) -> RunResult:
    """Run the configured training.  Bad flags or data fail here, before any compilation."""
    out = out or sys.stdout
    mjx_task = env_setup.is_mjx_task(cfg.env_name)
    if cfg.online_steps and not mjx_task:
        print(f"note: {cfg.env_name!r} has no MJX environment here, so the online phase is "
              f"skipped (--online_steps={cfg.online_steps} ignored); MJX tasks: lift, "
              "cube-single-singletask-task1, ...", file=out)
        cfg = dataclasses.replace(cfg, online_steps=0)
    if dataset is None:
        dataset = data_setup.load_dataset(cfg)
    venv = env_setup.make_vec_env(cfg.env_name, cfg.num_envs) if mjx_task else None
    if venv is not None and venv.episode.observation_size != dataset.obs_dim:
        raise ValueError(f"dataset {dataset.meta.sources[0]}: observation dim "
                         f"{dataset.obs_dim} does not match the {cfg.env_name} env "
                         f"({venv.episode.observation_size})")
    run_dir = make_run_dir(cfg.save_dir, cfg.run_group, cfg.env_name, cfg.seed)
    cluster_png = run_dir / "clusters.png" if cfg.cluster_sampler else None
    t_setup = time.perf_counter()
    trainer = make_offline_trainer(cfg, dataset, plot_path=cluster_png,
                                   store_kwargs=_store_kwargs(cfg, venv))
    resolved = {"config": _jsonable(cfg), "agent": _jsonable(trainer.agent_config),
                "sampler": _jsonable(trainer.sampler_config),
                "dataset": _jsonable(dataset.meta), "jax_backend": jax.default_backend(),
                "jax_version": jax.__version__}
    if trainer.cluster_result is not None:
        resolved["clusters"] = {"k": trainer.cluster_result.k,
                                "method": trainer.cluster_result.method}
    (run_dir / "config.json").write_text(json.dumps(resolved, indent=2))
    logger = MetricLogger(run_dir, resolved, use_wandb=cfg.wandb, entity=cfg.entity,
                          group=cfg.run_group, name=run_dir.name)
    if cluster_png is not None:
        logger.log_image("cluster/offline/plot", cluster_png, 0)
    h_exec = trainer.agent_config.horizon_length if trainer.agent_config.action_chunking else 1
    if eval_fn is None and venv is not None and cfg.eval_interval:
        from tper_jit.train.evaluation import make_evaluate

        eval_venv = env_setup.make_vec_env(cfg.env_name, cfg.eval_episodes)
        evaluate = make_evaluate(eval_venv, h_exec)
        eval_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 3)

        def eval_fn(agent, step):
            res = evaluate(agent, jax.random.fold_in(eval_key, step))
            return {k: float(v) for k, v in res.items()}

    print(f"run folder: {run_dir}  (wandb: {logger.wandb_note}; set-up "
          f"{time.perf_counter() - t_setup:.1f}s)", file=out)
    rows: list[dict[str, float]] = []
    ckpt_dir = None
    try:
        state = _offline_phase(cfg, trainer, logger, eval_fn, rows)
        if cfg.offline_steps:
            ckpt_dir = checkpoint.save_agent(run_dir, cfg.offline_steps, state.agent)
        if cfg.online_steps:
            from tper_jit.train.online_loop import online_phase

            state = online_phase(cfg, trainer, state, venv, logger, eval_fn, rows, run_dir,
                                 env_setup.reward_shift(cfg.env_name))
            ckpt_dir = checkpoint.save_agent(run_dir, cfg.offline_steps + cfg.online_steps,
                                             state.agent)
    finally:
        logger.close()
    print(f"done: {cfg.offline_steps} offline steps, {cfg.online_steps} online env steps\n"
          f"  run folder: {run_dir}\n  metrics:    {logger.csv} (and metrics.jsonl)\n"
          f"  config:     {run_dir / 'config.json'}"
          + (f"\n  clusters:   {cluster_png}" if cluster_png else "")
          + (f"\n  plots:      {run_dir / 'plots'}" if (run_dir / "plots").is_dir() else "")
          + (f"\n  checkpoint: {ckpt_dir} (agent; orbax)" if ckpt_dir else "")
          + f"\n  curves:     tper-plot {run_dir}", file=out)
    return RunResult(run_dir=run_dir, state=state, metrics=rows, cluster_png=cluster_png)


def _offline_phase(cfg, trainer, logger, eval_fn, rows):
    state = trainer.init_state
    progress = Progress(cfg.offline_steps, "offline", cfg.progress)
    done, next_eval = 0, cfg.eval_interval
    while done < cfg.offline_steps:
        length = min(cfg.log_interval, cfg.offline_steps - done)
        t0 = time.perf_counter()
        state, metrics = trainer.chunk(state, length)
        row = host_metrics(metrics)  # blocks until the chunk is done
        done += length
        row["time/offline_steps_per_sec"] = length / (time.perf_counter() - t0)
        # Chunks are not split at eval boundaries: every chunk length is a compilation.
        due = done >= next_eval or done == cfg.offline_steps
        if eval_fn is not None and cfg.eval_interval and due:
            row.update(eval_fn(state.agent, done))
            while next_eval <= done:
                next_eval += cfg.eval_interval
        logger.log(done, row)
        rows.append({"step": done, **row})
        progress.update(done, row, OFFLINE_KEYS)
    return state


def weighted_chunk_means(metrics: dict[str, jax.Array]) -> dict[str, float]:
    """Host view of an online chunk: agent metrics averaged over the iterations that trained;
    env metrics from sums (per finished episode)."""
    m = {k: np.asarray(v) for k, v in metrics.items()}
    training = m.pop("online_agent/training")
    out: dict[str, float] = {"online_agent/training_fraction": float(training.mean())}
    n_train = training.sum()
    for k, v in m.items():
        if k.startswith(("online_agent/", "ptr/")):
            if n_train > 0:
                out[k] = float((v * training).sum() / n_train)
        elif not k.startswith("env/"):
            out[k] = float(v.mean())
    ended = m["env/episodes_ended"].sum()
    out["env/episodes_ended"] = float(ended)
    if ended > 0:
        out["env/episode.return"] = float(m["env/episode.return_sum"].sum() / ended)
        out["env/episode.length"] = float(m["env/episode.length_sum"].sum() / ended)
        out["env/success_rate"] = float(m["env/success_sum"].sum() / ended)
    return out
