"""``--resume RUN_DIR``: continue a run folder from its newest full-state checkpoint.

Checks before anything is compiled: the folder is a run folder, the configuration is the one
the run was made with (differing keys are named; only the keys in ``MAY_CHANGE`` may differ),
and the offline dataset has the same sha256 as when the run started (datasets are referenced,
not copied into checkpoints).  ``restore_into`` then loads the per-seed state and the loop
position into a freshly set-up ``Driver`` and cuts the metric logs back to the checkpoint's
step, so the rows after it are written again exactly as an uninterrupted run writes them.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from tper_jit.config.flags import TrainConfig
from tper_jit.loop import seeds
from tper_jit.run import checkpoint


class RunComplete(Exception):
    """``--resume`` of a run whose newest checkpoint is its end: nothing to continue."""


@dataclasses.dataclass
class Position:
    """Where the loop stands (JSON in every checkpoint)."""

    phase: str = "offline"  # offline | online | done
    done: int = 0  # offline: gradient steps; online: env steps
    next_eval: int = 0  # the phase's next evaluation threshold
    next_save: int = 0  # the next checkpoint threshold in global (logged) steps
    rows: int = 0  # rows written to the main metrics log


# Keys that do not change what is computed.
MAY_CHANGE = ("resume", "progress", "wandb", "entity", "save_interval", "keep_checkpoints",
              "shard_seeds", "save_dir", "eval_envs", "save_all_online_states")


def stored_config(run_dir: str | pathlib.Path) -> dict[str, Any]:
    """The resolved ``config.json`` of a run folder (clear error if it is not one)."""
    path = pathlib.Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no config.json there (not a run folder)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--resume {run_dir}: config.json is not valid JSON ({e})") from e


def _normalise(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def config_from_run(run_dir: str | pathlib.Path, overrides: dict[str, Any] | None = None
                    ) -> TrainConfig:
    """The run's own ``TrainConfig`` with ``resume`` set, plus the allowed ``overrides``;
    any other override that differs from the stored value is refused, naming the keys."""
    stored = stored_config(run_dir)["config"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {k: v for k, v in stored.items() if k in fields}
    for k in ("agent",):
        kwargs[k] = {ak: tuple(av) if isinstance(av, list) else av
                     for ak, av in kwargs.get(k, {}).items()}
    overrides = dict(overrides or {})
    if "agent" in overrides:
        # a value given again that the run already used (its resolved agent config in
        # config.json, e.g. a default) is no change; only real changes stay overrides
        resolved = stored_config(run_dir).get("agent") or {}
        given = {k: v for k, v in overrides["agent"].items()
                 if k in kwargs["agent"] or _normalise(v) != _normalise(resolved.get(k))}
        overrides["agent"] = {**kwargs["agent"], **given}
    differing = sorted(k for k, v in overrides.items()
                       if k not in MAY_CHANGE and _normalise(v) != _normalise(kwargs.get(k)))
    if differing:
        raise ValueError(_differ_message(run_dir, differing, kwargs, overrides))
    kwargs.update(overrides)
    kwargs["resume"] = str(run_dir)
    return TrainConfig(**kwargs)


def _differ_message(run_dir, keys, stored, given) -> str:
    parts = [f"--{k}: run {stored.get(k)!r}, now {given.get(k)!r}" for k in keys]
    return (f"--resume {run_dir}: the configuration differs from the run's "
            f"({'; '.join(parts)}); only {', '.join(MAY_CHANGE)} may change on resume")


def check_compatible(cfg: TrainConfig) -> dict[str, Any]:
    """Refuse ``cfg`` unless it equals the run's stored config outside ``MAY_CHANGE``.

    A flag added to ``TrainConfig`` after the run was made is absent from its ``config.json``:
    it takes its default (so an older run folder resumes); setting it to anything else is a
    change and is refused like any other.  A stored key that is no longer a flag is ignored."""
    stored = stored_config(cfg.resume)
    defaults = json.loads(json.dumps({k: _normalise(v)
                                      for k, v in dataclasses.asdict(TrainConfig()).items()},
                                     default=list))
    have = json.loads(json.dumps({k: _normalise(v) for k, v in dataclasses.asdict(cfg).items()},
                                 default=list))
    want = {**defaults, **{k: v for k, v in json.loads(json.dumps(stored["config"])).items()
                           if k in have}}
    keys = sorted(k for k in have if k not in MAY_CHANGE and want.get(k) != have.get(k))
    if keys:
        raise ValueError(_differ_message(cfg.resume, keys, want, have))
    if not (pathlib.Path(cfg.resume) / "resume").is_dir():
        raise FileNotFoundError(f"--resume {cfg.resume}: no resume/ checkpoints in this run "
                                "folder (it was made before full-state checkpoints existed, "
                                "or stopped before its first save)")
    # the checkpoint itself is read before any data is loaded or anything compiled
    ck = checkpoint.RunCheckpointer(cfg.resume, async_save=False)
    try:
        step = ck.latest_step()
        meta = ck.read_meta(step) if step is not None else {}
    finally:
        ck.close()
    if step is None:
        raise FileNotFoundError(f"--resume {cfg.resume}: no complete checkpoint under resume/ "
                                "(the run stopped before its first save finished); start it "
                                "again without --resume")
    if meta.get("phase") == "done":
        raise RunComplete(f"--resume {cfg.resume}: the run is already complete (its final "
                          f"checkpoint is step {step}); nothing to continue")
    return stored


def check_dataset(run_dir: str | pathlib.Path, stored: dict[str, Any], dataset) -> None:
    """The offline data must be the bytes the run started from."""
    want = (stored.get("dataset") or {}).get("content_hash")
    have = dataset.meta.content_hash
    if want and have and want != have:
        raise ValueError(f"--resume {run_dir}: the dataset {dataset.meta.sources[0]} has "
                         f"{have}, but the run was trained on {want}; restore that file "
                         "(checkpoints reference the dataset, they do not contain it)")


def restore_into(drv) -> None:
    """Load the newest checkpoint of ``drv.run_dir`` into ``drv`` (state, position, logs)."""
    latest = drv.ckpt.latest_step()
    if latest is None:
        raise FileNotFoundError(f"--resume {drv.run_dir}: no complete checkpoint under "
                                f"{drv.ckpt.path}")
    meta = drv.ckpt.read_meta(latest)
    if meta.get("seeds") != list(drv.seed_list):
        raise ValueError(f"--resume {drv.run_dir}: checkpoint seeds {meta.get('seeds')} != "
                         f"{list(drv.seed_list)}")
    template = drv.rest
    if meta["phase"] in ("online", "done") and meta["done"] > 0:
        drv._start_online()  # the online state's structure, filled from the checkpoint below
        template = drv.rest
    rest, meta = drv.ckpt.restore(template, latest)
    drv.pos = _position(meta)
    if drv.host:
        drv.host_state = drv.ckpt.restore_host(latest)
    _, drv.rest = seeds.place(None, rest, drv.mesh)
    kept = drv.logger.truncate(latest)
    for lg in drv.seed_loggers:
        lg.truncate(latest)
    drv.pos.rows = kept
    drv.rows = list(drv.logger.rows)
    print(f"resumed {drv.run_dir} at step {latest} (phase {drv.pos.phase}, {kept} rows kept)",
          file=drv.out)


def _position(meta: dict[str, Any]) -> Position:
    names = {f.name for f in dataclasses.fields(Position)}
    return Position(**{k: v for k, v in meta.items() if k in names})
