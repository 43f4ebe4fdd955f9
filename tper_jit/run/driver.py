"""The outer loop of a run: compiled chunks for S seeds, logging, evaluation, checkpoints.

Offline phase: chunks of ``--log_interval`` gradient steps.  Online phase: chunks of
``--log_interval // (num_envs · H)`` iterations (see ``online.py``), one compiled scan for MJX
tasks or, for host envs (OGBench, robosuite), as many jitted act / host step / jitted learn calls
(``loop/host.py``; S seeds vmapped over S venvs; the host simulators' state is checkpointed
with the rest, so a resume continues their episodes exactly where the env kind allows).
Evaluation runs at the first chunk boundary at or after each multiple of ``--eval_interval``
and at the end of each phase; a full-state checkpoint is written at the first boundary at or
after each multiple of ``--save_interval``, at the end of each phase and when SIGTERM / SIGINT
arrives.

Everything the loop needs to continue lives in the checkpoint: the per-seed state (every key
and counter included) and a ``Position`` (phase, steps done, next eval / save, rows logged).
Evaluation keys are ``fold_in(fold_in(PRNGKey(seed), 3), step)``, so a resumed run repeats an
uninterrupted one bit for bit on the same backend.  Any non-finite loss or parameter stops
the run (``Diverged``) without writing the bad state over the last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import signal
import time
from collections.abc import Callable
from typing import Any

import jax

from tper_jit.loop import seeds
from tper_jit.loop.host import HostOnlineRows, init_host_states, restart_episodes
from tper_jit.loop.offline import host_metrics
from tper_jit.loop.online import (
    init_online_state,
    make_online_scan,
    priority_plot,
    weighted_chunk_means,
)
from tper_jit.run import checkpoint
from tper_jit.run.curve import write_run_curve
from tper_jit.run.logger import MetricLogger, Progress
from tper_jit.run.resume import Position
from tper_jit.stats import aggregate_rows
from tper_jit.tasks.resolve import TaskSpec

OFFLINE_KEYS = ("offline_agent/critic/critic_loss", "offline_agent/actor/bc_flow_loss",
                "offline_agent/critic/q_mean", "eval/success_rate")
ONLINE_KEYS = ("online_agent/critic/critic_loss", "env/episode.return", "env/success_rate",
               "eval/success_rate")
_WATCHED = ("offline_agent/", "online_agent/")


class Diverged(RuntimeError):
    """A loss or a parameter became NaN / inf."""


class Interrupted(RuntimeError):
    """SIGTERM / SIGINT: the state was saved, the run stopped."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclasses.dataclass(repr=False)  # a repr would read (possibly donated) device arrays
class Driver:
    """Holds one run's pieces; ``run()`` executes (or continues) both phases."""

    cfg: Any  # TrainConfig
    trainer: Any  # OfflineTrainer (agent/sampler configs, offline scan)
    offline: Any  # the shared offline Transitions block
    rest: Any  # per-seed state without the offline block, (S, ...) when S > 1
    seed_list: tuple[int, ...]
    logger: MetricLogger
    seed_loggers: list[MetricLogger]
    ckpt: checkpoint.RunCheckpointer
    run_dir: pathlib.Path
    task: TaskSpec | None = None  # what kind of task (simulator, reward rule)
    venv: Any = None  # MJX ChunkedVecEnv (or host_seeds.HostSeedEnvs) for the online phase
    evaluate: Callable | None = None  # (agents, step) -> per-seed rows (loop/evaluate.py)
    video: Callable | None = None  # (agent of the first seed, step) -> file (loop/video.py)
    mesh: Any = None
    pos: Position = dataclasses.field(default_factory=Position)
    host_state: Any = None  # the host envs' state read from the resumed checkpoint
    rows: list = dataclasses.field(default_factory=list)
    out: Any = None
    _signal: int | None = None
    _progress: Progress | None = None

    @property
    def num_seeds(self) -> int:
        return len(self.seed_list)

    # -- loop pieces -----------------------------------------------------------------------
    def _evaluate(self, agent: Any, step: int) -> list[dict[str, float]]:
        return self.evaluate(agent, step)

    def _record_video(self, step: int) -> None:
        if self.video is None:
            return
        path = self.video(seeds.index(self.rest.agent, 0, self.num_seeds), step)
        if path is not None:
            self.logger.log_video("eval/video", path, step)

    def _check_finite(self, step: int, rows: list[dict[str, float]]) -> None:
        for s, row in enumerate(rows):
            bad = [k for k, v in row.items() if k.startswith(_WATCHED) and not math.isfinite(v)]
            if row.get("health/params_finite", 1.0) < 1.0:
                bad.append("parameters")
            if bad:
                last = self.ckpt.last_saved
                where = (f"the last good checkpoint is {self.ckpt.path / str(last)} (step "
                         f"{last}; it was not overwritten)") if last is not None else \
                    "no checkpoint was written before it"
                raise Diverged(f"training diverged at step {step} (seed {self.seed_list[s]}): "
                               f"non-finite {', '.join(bad[:4])}; {where}. Lower --agent.lr or "
                               "check the dataset's rewards.")

    def _log(self, step: int, rows: list[dict[str, float]]) -> dict[str, float]:
        # A diverged row is still written (it is the diagnosis), then the run stops.
        for lg, row in zip(self.seed_loggers, rows, strict=False):
            lg.log(step, row)
        main = rows[0] if self.num_seeds == 1 else aggregate_rows(rows)
        self.logger.log(step, main)
        self.rows.append({"step": step, **main})
        self.pos.rows += 1
        self._check_finite(step, rows)
        return main

    def _write_curve(self, step: int) -> None:
        """``plots/curve.png`` from every row so far (a resumed run's ``rows`` hold the rows
        before its checkpoint too: ``resume.restore_into`` reads them back), also to wandb."""
        png = write_run_curve(self.rows, self.run_dir / "plots" / "curve.png",
                              self.cfg.offline_steps, self.num_seeds, self.cfg.env_name)
        self.logger.log_image("eval/curve", png, step)

    def _save(self, step: int) -> None:
        host = None
        if self.host and hasattr(self.rest, "env_state") and self.venv.exact()[0]:
            host = self.venv.get_state()  # between chunks: no chunk is half executed
        self.ckpt.save(step, self.rest, {**dataclasses.asdict(self.pos), "step": step,
                                         "seeds": list(self.seed_list)}, host=host)

    def _after_chunk(self, step: int) -> None:
        """Checkpoint when due; on a pending signal save (if not just saved) and stop."""
        interval = self.cfg.save_interval
        if interval and step >= self.pos.next_save:
            while self.pos.next_save <= step:
                self.pos.next_save += interval
            if self.ckpt.last_saved != step:
                self._save(step)
        if self._signal is not None:
            if self.ckpt.last_saved != step:
                self._save(step)
            self.ckpt.wait()
            name = signal.Signals(self._signal).name
            raise Interrupted(f"{name} received: state saved at step {step} in "
                              f"{self.ckpt.path / str(step)}; continue with "
                              f"tper-train --resume {self.run_dir}", self._signal)

    def _on_signal(self, signum, frame):
        if self._signal is not None:  # a second signal: stop now, without saving
            raise KeyboardInterrupt
        self._signal = signum
        print(f"\n{signal.Signals(signum).name}: saving at the end of the current chunk "
              "(send again to abort without saving)", file=self.out, flush=True)

    # -- phases ----------------------------------------------------------------------------
    def _offline_phase(self) -> None:
        cfg = self.cfg
        chunk = seeds.batch_chunk(self.trainer.scan, self.num_seeds, self.mesh, num_static=1)
        progress = self._progress = Progress(cfg.offline_steps, "offline", cfg.progress,
                                             start=self.pos.done)
        while self.pos.phase == "offline" and self.pos.done < cfg.offline_steps:
            length = min(cfg.log_interval, cfg.offline_steps - self.pos.done)
            t0 = time.perf_counter()
            self.rest, metrics = chunk(self.offline, self.rest, length)
            rows = [host_metrics(m) for m in seeds.per_seed(metrics, self.num_seeds)]
            self.pos.done += length
            done = self.pos.done
            rate = length / (time.perf_counter() - t0)
            # Chunks are not split at eval boundaries: every chunk length is a compilation.
            due = done >= self.pos.next_eval or done == cfg.offline_steps
            evals = None
            if self.has_eval and cfg.eval_interval and due:
                evals = self._evaluate(self.rest.agent, done)
                self._record_video(done)
                while self.pos.next_eval <= done:
                    self.pos.next_eval += cfg.eval_interval
            for s, row in enumerate(rows):
                row["time/offline_steps_per_sec"] = rate
                if evals is not None:
                    row.update(evals[s])
            main = self._log(done, rows)
            if evals is not None:
                self._write_curve(done)
            progress.update(done, main, OFFLINE_KEYS)
            if done == cfg.offline_steps:
                self.pos.phase, self.pos.done = "online", 0
                self.pos.next_eval = cfg.eval_interval
                if not cfg.online_steps:
                    self.pos.phase = "done"
                self._save(done)
            self._after_chunk(done)
        progress.close()
        if self.pos.phase == "offline":  # --offline_steps=0
            self.pos.phase, self.pos.next_eval = "online", cfg.eval_interval

    def _start_online(self) -> None:
        if self.host:  # one venv per seed, reset from its seed; not sharded
            self.rest = init_host_states(self.cfg, self.rest, self.venv, self.seed_list)
            return
        reset = jax.jit(self.venv.reset)
        states = [init_online_state(self.cfg, seeds.index(self.rest, s, self.num_seeds),
                                    self.venv, seed=seed, reset=reset)
                  for s, seed in enumerate(self.seed_list)]
        _, self.rest = seeds.place(None, seeds.stack(states), self.mesh)

    def _online_phase(self) -> None:
        cfg = self.cfg
        if self.host:  # jitted act → host env step → jitted observe_and_learn, K per row
            chunk = HostOnlineRows(cfg, self.trainer.agent_config, self.venv, self.task.rewards)
            k, per_iter, scfg = chunk.k, chunk.per_iter, chunk.scfg
            if self.pos.done > 0:  # resumed mid-phase
                self._restore_host_envs()
        else:
            scan, k, per_iter, scfg = make_online_scan(cfg, self.trainer.agent_config,
                                                       self.venv, self.task.rewards)
            chunk = seeds.batch_chunk(scan, self.num_seeds, self.mesh)
        progress = self._progress = Progress(cfg.online_steps, "online", cfg.progress,
                                             start=self.pos.done)
        plots = self.run_dir / "plots"
        while self.pos.done < cfg.online_steps:
            t0 = time.perf_counter()
            step0 = jax.device_get(self.rest.step)
            self.rest, metrics = chunk(self.offline, self.rest)
            rows = [weighted_chunk_means(m) for m in seeds.per_seed(metrics, self.num_seeds)]
            dt = time.perf_counter() - t0
            valid_steps = jax.device_get(self.rest.env_steps)
            grad_steps = (jax.device_get(self.rest.step) - step0).mean()
            # Nominal env steps (iterations · N · H) drive the loop, so every seed runs the
            # same chunks; env/env_steps logs the sub-steps each seed really executed.
            prev = self.pos.done
            env_steps = self.pos.done = prev + k * per_iter
            step = cfg.offline_steps + env_steps
            due = env_steps >= self.pos.next_eval or env_steps >= cfg.online_steps
            evals = None
            if self.has_eval and cfg.eval_interval and due:
                evals = self._evaluate(self.rest.agent, step)
                self._record_video(step)
                while self.pos.next_eval <= env_steps:
                    self.pos.next_eval += cfg.eval_interval
                if scfg.kind == "tper":
                    first = seeds.index(self.rest, 0, self.num_seeds)
                    png = priority_plot(first, plots / f"priorities_{env_steps:08d}.png",
                                         env_steps)
                    self.logger.log_image("ptr/priority_histogram", png, step)
            for s, row in enumerate(rows):
                row["env/env_steps"] = float(seeds.index(valid_steps, s, self.num_seeds))
                row["time/env_steps_per_sec"] = (env_steps - prev) / dt
                row["time/online_grad_steps_per_sec"] = float(grad_steps) / dt
                if evals is not None:
                    row.update(evals[s])
            main = self._log(step, rows)
            if evals is not None:
                self._write_curve(step)
            progress.update(env_steps, main, ONLINE_KEYS)
            if env_steps >= cfg.online_steps:
                self.pos.phase = "done"
                self._save(step)
            self._after_chunk(step)
        progress.close()

    def _restore_host_envs(self) -> None:
        """Put the checkpoint's host env state back, or restart the episodes saying why."""
        exact, why = self.venv.exact()
        if self.host_state is not None:
            self.venv.set_state(self.host_state)
            print(f"resumed the {self.venv.num_seeds * self.venv.num_envs} host envs of "
                  f"{self.venv.env_id} from the checkpoint (simulator state, episode "
                  "variables, random generators): their episodes continue", file=self.out,
                  flush=True)
            return
        why = why or "the checkpoint has no host env state (written by an older version)"
        self.rest = restart_episodes(self.rest, self.venv, why, self.out)

    @property
    def host(self) -> bool:
        """The online envs run on the host (``host_env.HostVecEnv``), not in MJX."""
        return self.task is not None and self.task.on_host

    @property
    def has_eval(self) -> bool:
        return self.evaluate is not None

    def run(self) -> None:
        """Run whatever remains of the phases (all of them for a fresh run)."""
        previous = {}
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: no signal handling
            previous = {}
        try:
            if self.pos.phase == "offline":
                self._offline_phase()
            if self.pos.phase == "online" and self.cfg.online_steps:
                if self.pos.done == 0 and not hasattr(self.rest, "env_state"):
                    self._start_online()
                self._online_phase()
            self.ckpt.wait()
        finally:
            if self._progress is not None:  # a live bar must not outlive an exception
                self._progress.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
