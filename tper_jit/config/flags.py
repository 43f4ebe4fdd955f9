"""Trainer configuration: the seed's flags, presets and ``--agent.<key>`` overrides.

Resolution order (later wins): ``TrainConfig`` defaults → ``--config`` preset file →
command-line flags.  The result is frozen; derived values are computed where used, never
written back.  Every flag is validated before any data is loaded or anything compiled, and a
misspelt flag fails with the closest valid names.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import pathlib
import typing
from collections.abc import Callable
from typing import Any

from tper_jit.config import qc_compat

CLUSTER_K_AUTO = ("elbow", "homogeneity")
# --metric choices: T-PER's per-trajectory scores (replay.priorities implements each).
METRICS = ("uniform", "td_error_rank", "success_binary", "avg_reward", "uqm_reward",
           "uhm_reward", "min_reward", "normalized")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Top-level flags (names and meaning as in the seed's README)."""

    env_name: str = "cube-single-play-singletask-task1-v0"  # task: dataset (and eval env)
    run_group: str = "Debug"  # run folder group (and wandb group)
    seed: int = 0  # seed of everything (params, sampling, envs)
    agent_type: str = "acfql"  # acfql | rlpd (the --agent.* keys follow its config)
    offline_steps: int = 1_000_000  # gradient steps on the offline data
    online_steps: int = 1_000_000  # env steps of online fine-tuning
    horizon_length: int = 5  # H, action chunk length (also sets agent.horizon_length)
    sparse: bool = False  # r <- -1[r != 0]
    discount: float = 0.99  # gamma (also sets agent.discount)
    # -- sampling ---------------------------------------------------------------------------
    cluster_sampler: bool = False  # offline: cluster-balanced trajectory sampling
    cluster_k: str = "elbow"  # K-means K: an int, 'elbow' or 'homogeneity'
    cluster_pca: bool = False  # K-means on PCA components instead of standardised features
    cluster_seed: int = 0  # K-means seed (data set-up, shared by every seed of a run)
    use_ptr_backward: bool = False  # online: trajectory-priority sampling (historical name)
    use_ptr_online_priority: bool = False  # online episodes join the priority sampler
    symmetric_sampling: bool = False  # online: RLPD batches, offline_fraction from offline data
    offline_fraction: float = 0.5  # share of offline chunks with --symmetric_sampling
    metric: str = "td_error_rank"  # T-PER priority metric
    ptr_warmup_steps: int = 20_000  # online steps of transition-uniform sampling first
    backward: str = "none"  # PTR start rule: none | last | sweep (True means last)
    ptr_refresh_fraction: float = 1 / 16  # T-PER ranks refreshed every E·f/B steps (0: every step)
    use_weighted_target: bool = False  # SARSA-weighted target (sets agent.use_weighted_target)
    beta: float = 0.5  # weight of the policy target in the SARSA mix (sets agent.beta)
    utd_ratio: int = 1  # gradient steps per env step online
    start_training: int = 5_000  # online env steps collected before gradient steps start
    num_envs: int = 16  # parallel MJX environments online (one replay stream each)
    buffer_size: int = 2_000_000  # online replay rows, split over the env streams (QC's 2M)
    # -- data -------------------------------------------------------------------------------
    dataset_path: str = ""  # explicit dataset file (npz / hdf5); default from env_name
    ogbench_dataset_dir: str = ""  # directory of OGBench npz shards (100M datasets)
    filter_key: str = ""  # robomimic demo subset mask/<key>, e.g. better / okay / worse
    dataset_episodes: int = 300  # MJX tasks: oracle episodes of the generated default dataset
    dataset_proportion: float = 1.0  # keep the first int(N * p) offline transitions (QC's cut)
    dataset_replace_interval: int = 1000  # QC's shard cycling; only 1000: all shards load at once
    # -- logging / evaluation ---------------------------------------------------------------
    entity: str = ""  # wandb entity; empty = offline wandb run, no account needed
    save_dir: str = "runs"  # run folders are created under here
    log_interval: int = 5_000  # steps between metric rows (one jitted chunk per row)
    eval_interval: int = 100_000  # steps between evaluations (0 = never)
    eval_episodes: int = 50  # episodes per evaluation
    video_episodes: int = 0  # extra eval episodes rendered to RUN_DIR/videos, not in eval/* (QC)
    video_frame_skip: int = 3  # env steps per video frame (QC)
    eval_envs: int = 16  # host-bridge tasks: eval envs alive at once, episodes in rounds (0 = all)
    env_workers: str = "auto"  # host env processes (0: none); auto: min(N, cores-1), 0 on <=2 cores
    env_backend: str = "host"  # OGBench names online: host (ogbench's envs) | mjx (JAX port, fused)
    physics: str = "auto"  # env_backend=mjx: jax (CPU variant) | warp (ogbench's scene) | auto
    wandb: bool = True  # log to wandb as well (offline mode unless `entity` is set)
    progress: bool = True  # progress bar (plain lines off a terminal): steps/s, ETA, metrics
    # -- seeds, checkpoints, devices --------------------------------------------------------
    num_seeds: int = 1  # S independent seeds seed..seed+S-1 in one vmapped program
    save_interval: int = 100_000  # steps between full-state checkpoints (0, QC's -1: phase ends)
    save_all_online_states: bool = False  # online transitions -> <run>/data.npz at the end
    keep_checkpoints: int = 2  # full-state checkpoints kept (the newest)
    shard_seeds: bool = True  # split the seed axis over the devices when several exist
    resume: str = ""  # a run folder to continue from its newest checkpoint
    agent: dict = dataclasses.field(default_factory=dict)  # overrides of the agent config
    oper: dict = dataclasses.field(default_factory=dict)  # OPER settings (--oper.<key>)

    def __post_init__(self):
        _positive(self, "offline_steps", allow_zero=True)
        _positive(self, "online_steps", allow_zero=True)
        _positive(self, "horizon_length")
        _positive(self, "log_interval")
        _positive(self, "eval_interval", allow_zero=True)
        _positive(self, "eval_episodes")
        _positive(self, "eval_envs", allow_zero=True)
        _positive(self, "utd_ratio")
        _positive(self, "num_envs")
        _positive(self, "start_training", allow_zero=True)
        _positive(self, "dataset_episodes")
        _positive(self, "buffer_size")
        _positive(self, "ptr_warmup_steps", allow_zero=True)
        _positive(self, "num_seeds")
        _positive(self, "save_interval", allow_zero=True)
        _positive(self, "keep_checkpoints")
        _positive(self, "video_episodes", allow_zero=True)
        _positive(self, "video_frame_skip")
        if not 0.0 < self.dataset_proportion <= 1.0:
            raise ValueError(f"--dataset_proportion must be in (0, 1], got "
                             f"{self.dataset_proportion}")
        if self.ogbench_dataset_dir and self.dataset_proportion != 1.0:
            raise ValueError("--dataset_proportion must be 1.0 with --ogbench_dataset_dir "
                             "(as in QC)")
        if self.dataset_replace_interval != qc_compat.DATASET_REPLACE_INTERVAL:
            raise ValueError(f"--dataset_replace_interval={self.dataset_replace_interval} cannot "
                             "be honoured: every --ogbench_dataset_dir shard is loaded at once "
                             "and sampled i.i.d. (no shard cycling); leave it at 1000")
        # jax.random.PRNGKey and scikit-learn take 32-bit seeds; seeds run seed..seed+S-1
        if not 0 <= self.seed <= 2**32 - self.num_seeds:
            raise ValueError(f"--seed must be in [0, 2**32 - num_seeds] = [0, "
                             f"{2**32 - self.num_seeds}], got {self.seed}")
        if not 0 <= self.cluster_seed < 2**32:
            raise ValueError(f"--cluster_seed must be in [0, 2**32), got {self.cluster_seed}")
        if not 0.0 <= self.ptr_refresh_fraction <= 1.0:
            raise ValueError(f"--ptr_refresh_fraction must be in [0, 1], got "
                             f"{self.ptr_refresh_fraction}")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"--offline_fraction must be in [0, 1], got {self.offline_fraction}")
        if self.symmetric_sampling and self.use_ptr_backward:
            raise ValueError("--symmetric_sampling and --use_ptr_backward both choose the online "
                             "sampler; use one of them")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"--discount must be in (0, 1], got {self.discount}")
        if self.backward not in ("none", "last", "sweep"):
            raise ValueError(f"--backward must be False/True/none/last/sweep, got "
                             f"{self.backward!r}")
        if self.cluster_k not in CLUSTER_K_AUTO:
            try:
                k = int(self.cluster_k)
            except ValueError:
                raise ValueError(f"--cluster_k must be an int >= 1 or one of {CLUSTER_K_AUTO}, "
                                 f"got {self.cluster_k!r}") from None
            if k < 1:
                raise ValueError(f"--cluster_k must be >= 1, got {k}")
        if self.metric not in METRICS:
            raise ValueError(f"--metric must be one of {METRICS}, got {self.metric!r}")
        _env_workers(self.env_workers)
        if self.env_backend not in ENV_BACKENDS:
            raise ValueError(f"--env_backend must be one of {ENV_BACKENDS}, got "
                             f"{self.env_backend!r}")
        if self.physics not in PHYSICS:
            raise ValueError(f"--physics must be one of {PHYSICS}, got {self.physics!r}")

    @property
    def cluster_k_value(self) -> int | str:
        return self.cluster_k if self.cluster_k in CLUSTER_K_AUTO else int(self.cluster_k)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _positive(cfg, name: str, allow_zero: bool = False) -> None:
    v = getattr(cfg, name)
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"--{name} must be {'>= 0' if allow_zero else '> 0'}, got {v}")


ENV_BACKENDS = ("host", "mjx")
PHYSICS = ("auto", "jax", "warp")


def _env_workers(value: Any) -> None:
    """``--env_workers``: ``auto`` or an integer >= 0 (``tasks.env_workers.workers_for`` turns
    it into a count per venv)."""
    text = str(value).strip().lower()
    if text == "auto":
        return
    try:
        ok = int(text) >= 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"--env_workers must be 'auto' or an integer >= 0, got {value!r}")


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def parse_bool(text: str, flag: str) -> bool:
    t = str(text).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError(f"--{flag} expects True or False, got {text!r}")


def coerce(value: Any, annotation: Any, flag: str) -> Any:
    """Convert a command-line string to the field's type (bool, int, float, str, tuple)."""
    if not isinstance(value, str):
        if isinstance(value, float) and (annotation is float or annotation == "float"):
            return _finite(value, flag)  # preset values arrive as Python numbers
        return value
    origin = typing.get_origin(annotation)
    if annotation is bool or annotation == "bool":
        return parse_bool(value, flag)
    try:
        if annotation is int or annotation == "int":
            return int(float(value)) if "e" in value.lower() else int(value)
        if annotation is float or annotation == "float":
            number = float(value)
        elif origin is tuple or annotation is tuple or str(annotation).startswith("tuple"):
            parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
            return tuple(int(p) for p in parts)
        else:
            return value
    except OverflowError:  # int(float("1e400")): inf has no integer value
        raise ValueError(f"--{flag}: {value!r} is out of range for an integer") from None
    except ValueError:
        raise ValueError(f"--{flag}: cannot read {value!r} as {annotation}") from None
    return _finite(number, flag)


def _finite(x: float, flag: str) -> float:
    # inf / nan pass every range check written as a comparison and only show up as a
    # diverged loss after compilation
    if not math.isfinite(x):
        raise ValueError(f"--{flag} must be a finite number, got {x}")
    return x


def load_preset(path: str | pathlib.Path) -> dict[str, Any]:
    """A preset file defines ``get_config() -> dict`` of flag overrides (``agent`` a dict)."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--config: no such preset file {str(p)!r}")
    spec = importlib.util.spec_from_file_location(f"tper_preset_{p.stem}", p)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a preset is user code: SyntaxError, ImportError, anything
        raise ValueError(f"--config {p}: the preset failed to load: "
                         f"{type(e).__name__}: {e}") from None
    if not hasattr(module, "get_config"):
        raise ValueError(f"--config {p}: the preset must define get_config() returning a dict")
    try:
        cfg = module.get_config()
    except Exception as e:
        raise ValueError(f"--config {p}: get_config() raised {type(e).__name__}: {e}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--config {p}: get_config() must return a dict, got {type(cfg)}")
    return cfg


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown(name: str, valid, prefix: str = "--") -> ValueError:
    close = difflib.get_close_matches(name, list(valid), n=3)
    hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    return ValueError(f"unknown flag {prefix}{name}{hint}")


def parse_args(argv: list[str], agent_class: Callable[[str], type] | None = None,
               oper_class: type | None = None) -> TrainConfig:
    """Parse ``--flag=value`` / ``--flag value`` / ``--agent.key=value`` /
    ``--oper.key=value`` / ``--config FILE``, and QC's spellings (``qc_compat``):
    ``--agent=agents/acfql.py`` (the agent type), QC's agent keys, ``--save_interval=-1``.

    ``agent_class(agent_type) -> config class`` and ``oper_class`` type-check and convert
    the ``--agent.*`` / ``--oper.*`` overrides (left as given when None).  This module knows no
    agent: ``tper_jit.cli.parse_args`` passes the registry's classes."""
    flags: dict[str, str] = {}
    agent: dict[str, str] = {}
    oper: dict[str, str] = {}
    preset: dict[str, Any] = {}
    preset_path = ""
    agent_file = ""
    i = 0
    types = _field_types(TrainConfig)
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ValueError(f"unexpected argument {arg!r}; flags look like --name=value")
        name, eq, value = arg[2:].partition("=")
        if not eq and name not in types and types.get(name[2:]) is bool \
                and name.startswith("no"):  # absl's (QC's) --noFLAG for a boolean
            name, eq, value = name[2:], "=", "False"
        if not eq:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            is_bool = types.get(name) is bool
            if nxt is not None and not nxt.startswith("--"):
                value, i = nxt, i + 1
            elif is_bool:
                value = "True"
            else:
                raise ValueError(f"--{name} needs a value")
        i += 1
        if name == "config":
            preset, preset_path = load_preset(value), value
        elif name == "agent":  # QC's config file: agents/acfql.py, agents/acrlpd.py
            agent_file = value
        elif name.startswith("agent."):
            agent[name[len("agent."):]] = value
        elif name.startswith("oper."):
            oper[name[len("oper."):]] = value
        elif name in types and name not in ("agent", "oper"):
            flags[name] = value
        else:
            raise _unknown(name, [n for n in types if n not in ("agent", "oper")] + ["config"])
    merged: dict[str, Any] = {k: v for k, v in preset.items() if k not in ("agent", "oper")}
    for k in merged:
        if k not in types:
            raise ValueError(f"--config {preset_path}: {_unknown(k, types)}")
    merged.update(flags)
    if "backward" in merged and str(merged["backward"]).lower() in _TRUE | _FALSE:
        merged["backward"] = "last" if parse_bool(merged["backward"], "backward") else "none"
    kwargs = {k: coerce(v, types[k], k) for k, v in merged.items()}
    if kwargs.get("save_interval") == qc_compat.SAVE_INTERVAL_NEVER:
        kwargs["save_interval"] = 0  # QC's default: no periodic checkpoints
    agent_over = dict(preset.get("agent", {}))
    agent_over.update(agent)
    file_type = qc_compat.agent_type_from_file(agent_file) if agent_file else None
    agent_over, named = qc_compat.translate_agent(
        agent_over, file_type or kwargs.get("agent_type", "acfql"))
    chosen = {k: v for k, v in (("--agent", file_type), ("--agent.agent_name", named)) if v}
    explicit = {"--agent_type": kwargs["agent_type"]} if "agent_type" in flags else {}
    if len(set({**chosen, **explicit}.values())) > 1:
        raise ValueError("the agent type is chosen twice, differently: " + ", ".join(
            f"{k}={v}" for k, v in {**chosen, **explicit}.items()) + "; give one of them")
    if chosen:
        kwargs["agent_type"] = next(iter(chosen.values()))
    if agent_class is not None:
        atypes = _field_types(agent_class(kwargs.get("agent_type", "acfql")))
        for k in agent_over:
            if k not in atypes:
                raise _unknown(k, atypes, prefix="--agent.")
        agent_over = {k: coerce(v, atypes[k], f"agent.{k}") for k, v in agent_over.items()}
    kwargs["agent"] = agent_over
    oper_over = {**preset.get("oper", {}), **oper}
    if oper_class is not None:
        otypes = _field_types(oper_class)
        for k in oper_over:
            if k not in otypes:
                raise _unknown(k, otypes, prefix="--oper.")
        oper_over = {k: coerce(v, otypes[k], f"oper.{k}") for k, v in oper_over.items()}
        oper_class(**oper_over)  # validate now, before any data is read
    kwargs["oper"] = oper_over
    return TrainConfig(**kwargs)
