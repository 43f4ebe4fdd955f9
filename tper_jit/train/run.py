"""The outer Python loop: set-up once, then jitted chunks, logging between chunks."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import jax

from tper_jit.data.common import FlatDataset
from tper_jit.train import data_setup
from tper_jit.train.config import TrainConfig
from tper_jit.train.logger import MetricLogger, Progress, make_run_dir
from tper_jit.train.offline import host_metrics, make_offline_trainer

PROGRESS_KEYS = ("offline_agent/critic/critic_loss", "offline_agent/actor/bc_flow_loss",
                 "offline_agent/critic/q_mean")


@dataclasses.dataclass
class RunResult:
    run_dir: pathlib.Path
    state: Any  # final TrainState
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


def train(cfg: TrainConfig, dataset: FlatDataset | None = None,
          eval_fn: Callable[[Any, int], dict[str, float]] | None = None,
          out=sys.stdout) -> RunResult:
    """Run the configured training.  Bad flags or data fail here, before any compilation."""
    if dataset is None:
        dataset = data_setup.load_dataset(cfg)
    run_dir = make_run_dir(cfg.save_dir, cfg.run_group, cfg.env_name, cfg.seed)
    cluster_png = run_dir / "clusters.png" if cfg.cluster_sampler else None
    t_setup = time.perf_counter()
    trainer = make_offline_trainer(cfg, dataset, plot_path=cluster_png)
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
    print(f"run folder: {run_dir}  (wandb: {logger.wandb_note}; set-up "
          f"{time.perf_counter() - t_setup:.1f}s)", file=out)
    if cfg.online_steps:
        print("note: the online phase is not implemented in this version; running the "
              f"offline phase only (--online_steps={cfg.online_steps} ignored)", file=out)

    state = trainer.init_state
    progress = Progress(cfg.offline_steps, "offline", cfg.progress)
    done, next_eval = 0, cfg.eval_interval
    rows = []
    try:
        while done < cfg.offline_steps:
            length = min(cfg.log_interval, cfg.offline_steps - done)
            t0 = time.perf_counter()
            state, metrics = trainer.chunk(state, length)
            row = host_metrics(metrics)  # blocks until the chunk is done
            done += length
            row["time/offline_steps_per_sec"] = length / (time.perf_counter() - t0)
            # Evaluate at the first chunk boundary at or after each multiple of
            # eval_interval (chunks are not split: every chunk length is a compilation),
            # and once more at the end.
            due = done >= next_eval or done == cfg.offline_steps
            if eval_fn is not None and cfg.eval_interval and due:
                row.update(eval_fn(state.agent, done))
                while next_eval <= done:
                    next_eval += cfg.eval_interval
            logger.log(done, row)
            rows.append({"step": done, **row})
            progress.update(done, row, PROGRESS_KEYS)
    finally:
        logger.close()
    print(f"done: {done} offline steps\n  run folder: {run_dir}\n  metrics:    "
          f"{logger.csv} (and metrics.jsonl)\n  config:     {run_dir / 'config.json'}"
          + (f"\n  clusters:   {cluster_png}" if cluster_png else ""), file=out)
    return RunResult(run_dir=run_dir, state=state, metrics=rows, cluster_png=cluster_png)
