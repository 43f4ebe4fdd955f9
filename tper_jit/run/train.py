"""The outer Python loop: set-up once, then jitted chunks, logging between chunks.

Offline phase: chunks of ``--log_interval`` gradient steps.  Online phase (MJX tasks; OGBench
manipspace singletask names and, with the robosuite extra, robomimic datasets through the
host-env bridge, ``loop/host.py``):
chunks of ``--log_interval // (num_envs · H)`` iterations, each iteration one action chunk
per env plus ``utd_ratio · num_envs · H`` gradient steps.  Evaluation runs at the first chunk
boundary at or after each multiple of ``--eval_interval`` (offline: gradient steps; online:
env steps) and at the end of each phase.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import jax

from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import FlatDataset, check_chunk_length
from tper_jit.loop import seeds
from tper_jit.loop.evaluate import build_evaluator
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.loop.video import build_video_recorder
from tper_jit.run import checkpoint, driver, online_data, resume
from tper_jit.run.logger import MetricLogger, make_run_dir
from tper_jit.tasks import datasets, mjx_tasks
from tper_jit.tasks.env_workers import workers_for
from tper_jit.tasks.host_env import HostVecEnv
from tper_jit.tasks.host_seeds import HostSeedEnvs
from tper_jit.tasks.resolve import TaskSpec, task_of


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


def _online_env(cfg: TrainConfig, task: TaskSpec, seed_list: tuple[int, ...]):
    """The training venv of the online phase (None without online steps)."""
    if not cfg.online_steps:
        return None
    if task.simulator == "mjx":
        return mjx_tasks.make_vec_env(task.mjx_name, cfg.num_envs)
    # OGBench / robosuite: the host-env bridge (loop/host.py), N envs per seed, each venv
    # seeded from its seed as the single run of that seed would be; --env_workers counts the
    # run's worker processes, split evenly over the seeds' venvs
    total = workers_for(cfg.env_workers, cfg.num_envs * len(seed_list))
    return HostSeedEnvs.make(cfg.env_name, cfg.num_envs, seed_list,
                             dataset_path=cfg.dataset_path or None, simulator=task.simulator,
                             workers=min(cfg.num_envs, total // len(seed_list)))


def _check_obs_width(cfg: TrainConfig, task: TaskSpec, venv: Any,
                     dataset: FlatDataset) -> None:
    """The dataset's observation width against the task's env, before the run folder: an
    offline-only host task builds one env just for this (a wrong-width file would otherwise
    train offline and fail only at its first evaluation, or never)."""
    env = venv
    if env is None and task.on_host:
        env = HostVecEnv(cfg.env_name, 1, seed=cfg.seed, dataset_path=cfg.dataset_path or None,
                         simulator=task.simulator)
    if env is None:
        return
    try:
        width = env.episode.observation_size
    finally:
        if env is not venv:
            env.close()
    if width != dataset.obs_dim:
        raise ValueError(f"dataset {dataset.meta.sources[0]}: observation dim "
                         f"{dataset.obs_dim} does not match the {cfg.env_name} env ({width})")


def _note_reduced_k(cfg: TrainConfig, k: int, dataset: FlatDataset, out) -> None:
    """A fixed ``--cluster_k`` larger than the distinct episodes is lowered on purpose (empty
    clusters would get sampling weight); say so once, config.json records both values."""
    want = cfg.cluster_k_value
    if isinstance(want, int) and k < want:
        print(f"note: --cluster_k={want} but the {dataset.num_episodes} offline episodes give "
              f"only {k} distinct clusters: K = {k} is used (config.json: clusters.k, "
              "clusters.requested_k)", file=out)


def train(cfg: TrainConfig, dataset: FlatDataset | None = None,
          eval_fn: Callable[[Any, int], dict[str, float]] | None = None,
          out=None) -> RunResult:
    """Run the configured training (``--num_seeds`` seeds in one program), or continue the
    run folder ``cfg.resume`` from its newest checkpoint.  Bad flags or data fail here, before
    any compilation.  ``eval_fn(agent, step)`` replaces the task's evaluation (per seed)."""
    out = out or sys.stdout
    stored = resume.check_compatible(cfg) if cfg.resume else None
    task = task_of(cfg, strict=dataset is None)
    if cfg.online_steps and not task.has_env:
        print(f"{task.note} (--online_steps={cfg.online_steps} ignored)", file=out)
        cfg = dataclasses.replace(cfg, online_steps=0)
    if dataset is None:
        dataset = datasets.load_dataset(cfg, task)
    check_chunk_length(dataset, cfg.horizon_length)
    if stored is not None:
        resume.check_dataset(cfg.resume, stored, dataset)
    seed_list = seeds.seed_values(cfg.seed, cfg.num_seeds)
    venv = _online_env(cfg, task, seed_list)
    _check_obs_width(cfg, task, venv, dataset)
    if cfg.resume:
        run_dir = pathlib.Path(cfg.resume)
    else:
        tag = str(cfg.seed) if cfg.num_seeds == 1 else f"s{cfg.seed}-{seed_list[-1]}"
        run_dir = make_run_dir(cfg.save_dir, cfg.run_group, cfg.env_name, tag)
    with _PartialRunGuard(run_dir, cfg.save_dir, fresh=not cfg.resume, out=out) as guard:
        cluster_png = run_dir / "clusters.png" if cfg.cluster_sampler else None
        t_setup = time.perf_counter()
        trainer = make_offline_trainer(cfg, dataset, plot_path=cluster_png,
                                       store_kwargs=_store_kwargs(cfg, venv), seeds=seed_list)
        resolved = {"config": _jsonable(cfg), "agent": _jsonable(trainer.agent_config),
                    "sampler": _jsonable(trainer.sampler_config),
                    "task": _jsonable(task), "dataset": _jsonable(dataset.meta),
                    "seeds": list(seed_list),
                    "jax_backend": jax.default_backend(), "jax_version": jax.__version__}
        if trainer.cluster_result is not None:
            resolved["clusters"] = {"k": trainer.cluster_result.k,
                                    "method": trainer.cluster_result.method,
                                    "requested_k": cfg.cluster_k_value}
            _note_reduced_k(cfg, trainer.cluster_result.k, dataset, out)
        if not cfg.resume:
            _write_text(run_dir / "config.json", json.dumps(resolved, indent=2))
        logger = MetricLogger(run_dir, resolved, use_wandb=cfg.wandb, entity=cfg.entity,
                              group=cfg.run_group, name=run_dir.name)
        seed_loggers = [] if cfg.num_seeds == 1 else [
            MetricLogger(_mkdir(run_dir / "seeds" / f"seed{s}"), resolved, use_wandb=False)
            for s in seed_list]
        if cluster_png is not None and not cfg.resume:
            logger.log_image("cluster/offline/plot", cluster_png, 0)
        evaluate = build_evaluator(cfg, task, trainer.agent_config, seed_list, eval_fn)
        video = build_video_recorder(cfg, task, trainer.agent_config, seed_list[0], run_dir,
                                     out=out)
        offline = trainer.init_state.replay.store.offline
        rest = seeds.stack([seeds.split_offline(st)[1] for st in trainer.init_states])
        # host-env seeds are not sharded: their act / learn calls are plain jits
        mesh = seeds.make_mesh(cfg.num_seeds, cfg.shard_seeds and not task.on_host)
        offline, rest = seeds.place(offline, rest, mesh)
        drv = driver.Driver(
            cfg=cfg, task=task, trainer=trainer, offline=offline, rest=rest,
            seed_list=seed_list, logger=logger, seed_loggers=seed_loggers,
            ckpt=checkpoint.RunCheckpointer(run_dir, keep=cfg.keep_checkpoints),
            run_dir=run_dir, venv=venv, evaluate=evaluate, video=video, mesh=mesh, out=out,
            pos=resume.Position(next_eval=cfg.eval_interval, next_save=cfg.save_interval))
        guard.driver = drv
        if cfg.resume:
            resume.restore_into(drv)
        devices = f"{mesh.devices.size} devices" if mesh is not None else jax.default_backend()
        print(f"run folder: {run_dir}  ({cfg.num_seeds} seed{'s' * (cfg.num_seeds > 1)} on "
              f"{devices}; wandb: {logger.wandb_note}; set-up "
              f"{time.perf_counter() - t_setup:.1f}s)", file=out)
        ckpt_dir = None
        try:
            drv.run()
            if cfg.save_all_online_states:
                online_data.save_online_states(run_dir, drv.rest, seed_list, out)
            if cfg.offline_steps or cfg.online_steps:
                ckpt_dir = checkpoint.save_agent(run_dir, cfg.offline_steps + cfg.online_steps,
                                                 drv.rest.agent)
        finally:
            drv.ckpt.close()
            if getattr(venv, "is_host", False):
                venv.close()  # stops its env worker processes (--env_workers)
            for lg in (logger, *seed_loggers):
                lg.close()
        print(f"done: {cfg.offline_steps} offline steps, {cfg.online_steps} online env steps"
              f"{f' x {cfg.num_seeds} seeds' if cfg.num_seeds > 1 else ''}\n"
              f"  run folder: {run_dir}\n  metrics:    {logger.csv} (and metrics.jsonl"
              + ("; per seed under seeds/, mean and /ci95 here" if seed_loggers else "") + ")\n"
              f"  config:     {run_dir / 'config.json'}"
              + (f"\n  clusters:   {cluster_png}" if cluster_png else "")
              + (f"\n  plots:      {run_dir / 'plots'}" if (run_dir / "plots").is_dir() else "")
              + (f"\n  videos:     {run_dir / 'videos'}" if (run_dir / "videos").is_dir() else "")
              + (f"\n  checkpoint: {ckpt_dir} (agent; orbax)" if ckpt_dir else "")
              + f"\n  resume:     {drv.ckpt.path} (full state; tper-train --resume {run_dir})"
              + f"\n  curves:     tper-plot {run_dir}", file=out)
        state = seeds.join_offline(drv.offline, drv.rest)
        return RunResult(run_dir=run_dir, state=state, metrics=drv.rows, cluster_png=cluster_png)


class _PartialRunGuard:
    """Removes a fresh run folder (and run-group folders left empty) when set-up or training
    fails before the folder holds anything worth keeping — no metrics row, no checkpoint — so a
    crash at start leaves no folder that ``tper-plot RUNS/*/...`` would trip over.  A failure
    after the first row keeps the folder (its rows and checkpoints are the run's record)."""

    def __init__(self, run_dir: pathlib.Path, save_dir: str, fresh: bool, out) -> None:
        self.run_dir, self.save_dir, self.fresh, self.out = run_dir, save_dir, fresh, out
        self.driver: driver.Driver | None = None

    def __enter__(self) -> _PartialRunGuard:
        return self

    def _has_results(self) -> bool:
        if self.driver is not None and self.driver.pos.rows:
            return True
        return any(any((self.run_dir / d).iterdir()) for d in ("checkpoints", "resume")
                   if (self.run_dir / d).is_dir())

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or not self.fresh or self._has_results():
            return False
        shutil.rmtree(self.run_dir, ignore_errors=True)
        top = pathlib.Path(self.save_dir).resolve()
        parent = self.run_dir.parent.resolve()
        while parent != top and top in parent.parents and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
        print(f"removed the run folder {self.run_dir}: the run failed before its first "
              "metrics row or checkpoint", file=self.out)
        return False  # the exception goes on


def _mkdir(path: pathlib.Path) -> pathlib.Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create {path}: {e}") from e
    return path


def _write_text(path: pathlib.Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise OSError(f"cannot write {path}: {e}") from e
