"""Run folder, metric sinks (CSV, JSON lines, wandb) and the progress line.

Called once per jitted chunk, never per step.  wandb runs in offline mode unless an entity is
configured (no account needed); if wandb cannot start at all, training goes on with the
local sinks and says so once.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import sys
import time
from typing import Any


def make_run_dir(save_dir: str, run_group: str, env_name: str, seed: int | str) -> pathlib.Path:
    """``save_dir/run_group/env_name/seed<seed>_<timestamp>``; fails clearly if unwritable."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = pathlib.Path(save_dir) / run_group / env_name
    path = base / f"seed{seed}_{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"seed{seed}_{stamp}_{n}"
    try:
        path.mkdir(parents=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"--save_dir: cannot create a writable run folder at {path}: {e}") from e
    return path


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _short(key: str) -> str:
    """Progress-line name of a metric: the agent's losses by their last part, env and
    evaluation metrics with their prefix (``env/success_rate`` vs ``eval/success_rate``)."""
    head, _, _ = key.partition("/")
    return key if head in ("env", "eval") else key.split("/")[-1]


_BAR_WIDTH = 16  # characters of the progress bar itself


class Progress:
    """Progress of one phase on stderr: steps, rate, ETA and a few metrics.

    On a terminal it is one live bar (rich, which flax already installs) redrawn at each
    logged chunk; when the stream is not a terminal (CI, a file, a pipe) each chunk prints one
    plain line instead, so logs stay readable.  ``terminal`` overrides the detection (tests).
    ``close()`` ends the bar (the driver calls it at the end of the phase)."""

    def __init__(self, total: int, phase: str, enabled: bool = True, stream=None,
                 start: int = 0, terminal: bool | None = None):
        self.total, self.phase, self.enabled = total, phase, enabled
        self.stream = stream
        self.begin, self.t_begin = start, time.perf_counter()
        self.start_step, self.t0 = None, self.t_begin
        self._bar = self._task = None
        if enabled:
            stream = self.stream or sys.stderr
            is_tty = terminal if terminal is not None else _isatty(stream)
            if is_tty:
                self._bar, self._task = _rich_bar(stream, phase, total, start)

    def update(self, step: int, metrics: dict[str, float], keys: tuple[str, ...] = ()) -> str:
        """Report the chunk that ended at ``step``; returns the plain line."""
        now = time.perf_counter()
        if self.start_step is None:
            # the first chunk includes its compilation: a pessimistic rate, refined from the
            # second row on (measured from the end of the first chunk)
            self.start_step, self.t0 = step, now
            rate = (step - self.begin) / max(now - self.t_begin, 1e-9)
        else:
            rate = (step - self.start_step) / max(now - self.t0, 1e-9)
        eta = max(self.total - step, 0) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{_short(k)}={metrics[k]:.4g}" for k in keys if k in metrics)
        line = (f"[{self.phase}] {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) "
                f"| {rate:.1f} steps/s | ETA {_fmt_time(eta)} | {shown}")
        if self._bar is not None:
            rate_s, eta_s = f"{rate:.1f} steps/s", f"ETA {_fmt_time(eta)}"
            # a row wider than the terminal would make rich drop whole columns: cut the
            # metrics instead (label, bar, counts, rate and ETA always fit)
            counts = 2 * len(str(self.total)) + 1
            used = (len(self.phase) + 2) + 1 + _BAR_WIDTH + 1 + counts + 1 \
                + len(rate_s) + 3 + len(eta_s) + 3
            room = max(self._bar.console.width - used - 1, 0)
            if len(shown) > room:
                shown = shown[:max(room - 1, 0)] + "…" if room else ""
            self._bar.update(self._task, completed=min(step, self.total), rate=rate_s,
                             eta=eta_s, metrics=shown)
            self._bar.refresh()
        elif self.enabled:
            print(line, file=self.stream or sys.stderr, flush=True)
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty / a closed stream
        return False


def _rich_bar(stream, phase: str, total: int, start: int):
    """A started rich progress bar on ``stream`` (None, None if rich is missing)."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress
        from rich.table import Column
    except ImportError:
        return None, None
    console = Console(file=stream, force_terminal=True)
    # markup off: "[offline]" and metric values are text, not rich tags; one text column
    # after the bar, so a narrow terminal cuts the metrics at the end, not the ETA
    label = f"[{phase}]"
    fixed = lambda n: Column(min_width=n, no_wrap=True)  # noqa: E731
    bar = RichProgress(TextColumn(label, markup=False, table_column=fixed(len(label))),
                       BarColumn(bar_width=_BAR_WIDTH, table_column=fixed(_BAR_WIDTH)),
                       MofNCompleteColumn(table_column=fixed(2 * len(str(total)) + 1)),
                       TextColumn("{task.fields[rate]} | {task.fields[eta]} | "
                                  "{task.fields[metrics]}", markup=False),
                       console=console, auto_refresh=False)  # prints of others go above it
    task = bar.add_task(phase, total=max(total, 1), completed=start, rate="compiling…",
                        eta="ETA ?", metrics="")
    bar.start()
    bar.refresh()
    return bar, task


class MetricLogger:
    """Writes one row per call to ``metrics.jsonl`` and ``metrics.csv`` (and wandb)."""

    def __init__(self, run_dir: pathlib.Path, config: dict[str, Any], use_wandb: bool = True,
                 entity: str = "", project: str = "tper-jit", group: str = "",
                 name: str = ""):
        self.run_dir = pathlib.Path(run_dir)
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.csv = self.run_dir / "metrics.csv"
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.wandb_run = None
        self.wandb_note = "disabled"
        if use_wandb:
            self._start_wandb(config, entity, project, group, name)

    def _start_wandb(self, config, entity, project, group, name):
        try:
            import wandb
        except ImportError:
            self.wandb_note = "not installed"
            return
        mode = os.environ.get("WANDB_MODE") or ("online" if entity else "offline")
        # An unreachable server must cost seconds, not wandb's default minutes.
        timeout = float(os.environ.get("TPER_WANDB_INIT_TIMEOUT", "30"))
        try:
            self.wandb_run = wandb.init(project=project, entity=entity or None, group=group,
                                        name=name, dir=str(self.run_dir), mode=mode,
                                        config=config, reinit="finish_previous",
                                        settings=wandb.Settings(init_timeout=timeout))
            self.wandb_note = mode
        except Exception as e:  # noqa: BLE001 - an unreachable wandb must never stop training
            if mode != "offline":
                try:
                    self.wandb_run = wandb.init(project=project, group=group, name=name,
                                                dir=str(self.run_dir), mode="offline",
                                                config=config, reinit="finish_previous")
                    self.wandb_note = f"offline (online failed: {e})"
                    print(f"wandb: online run failed ({e}); logging offline", file=sys.stderr)
                    return
                except Exception as e2:  # noqa: BLE001
                    e = e2
            self.wandb_note = f"failed: {e}"
            print(f"wandb: could not start ({e}); using CSV/JSONL only", file=sys.stderr)

    def truncate(self, last_step: int) -> int:
        """Keep the rows logged at steps <= ``last_step`` (a resumed run rewrites what came
        after its checkpoint); returns the number of rows kept."""
        rows = []
        if self.jsonl.exists():
            for line in self.jsonl.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
                if row.get("step", math.inf) <= last_step:
                    rows.append(row)
        self.rows = rows
        self.columns = list(dict.fromkeys(k for r in rows for k in r))
        tmp = self.jsonl.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(self.jsonl)
        self._rewrite_csv()
        return len(rows)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self.rows.append(row)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        new_cols = [k for k in row if k not in self.columns]
        if new_cols:
            self.columns += new_cols
            self._rewrite_csv()
        else:
            with self.csv.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self.wandb_run is not None:
            self.wandb_run.log(row, step=int(step))

    def _rewrite_csv(self) -> None:
        tmp = self.csv.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.csv)

    def log_image(self, key: str, path: pathlib.Path, step: int) -> None:
        if self.wandb_run is not None:
            import wandb

            self.wandb_run.log({key: wandb.Image(str(path))}, step=int(step))

    def log_video(self, key: str, path: pathlib.Path, step: int) -> None:
        if self.wandb_run is not None:
            import wandb

            fmt = pathlib.Path(path).suffix.lstrip(".")
            self.wandb_run.log({key: wandb.Video(str(path), format=fmt)}, step=int(step))

    def close(self) -> None:
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None
