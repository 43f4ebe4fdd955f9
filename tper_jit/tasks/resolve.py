"""The task resolver: ``--env_name`` / ``--dataset_path`` → one ``TaskSpec``.

Every decision that depends on what kind of task a run is made here, once, from the names:
which simulator runs the online phase and the evaluation, which loader reads the offline
data, and the reward convention the agent sees — applied identically to the offline rows
(by the loader) and to the online transitions (``TaskSpec.rewards``).  The rest of the
trainer reads the spec and never tests a name again.

Simulators:

- ``mjx``: the project's MJX tasks (``envs_mjx.registry``), vectorised inside the jitted loop;
- ``ogbench-host``: OGBench manipspace singletask names, ogbench's own envs on the host
  (``host_env.HostVecEnv``); with ``--env_backend=mjx`` the cube / puzzle ones run ``mjx``
  instead: the JAX port of ogbench's env (``envs_mjx.ogbench``, registry name
  ``ogbench-mjx/<env id>:<physics>``, ``TaskSpec.mjx_env``) inside the fused loop;
- ``robosuite-host``: robomimic low-dim names / robosuite ``.hdf5`` files (the robosuite extra);
- ``none``: a dataset without an environment here (offline training only, no evaluation).

Reward rule (ALGORITHM §3): robomimic-style {0, 1} rewards are shifted by −1 (MJX lift / can /
square, robomimic files, robosuite envs); OGBench rewards Σ ok − n are kept; then
``--sparse`` maps r ← −1·[r ≠ 0] (QC's ``main.py`` does both, offline and online).
"""

from __future__ import annotations

import dataclasses
import difflib

from envs_mjx import registry as mjx_registry
from tper_jit import data
from tper_jit.data.robomimic_hdf5 import DATASET_TYPES, OBS_TYPE_NAMES
from tper_jit.tasks import mjx_tasks, robosuite_env

SIMULATORS = ("mjx", "ogbench-host", "robosuite-host", "none")
LOADERS = ("generated-npz", "robomimic-hdf5", "ogbench-npz")
HDF5_SUFFIXES = (".hdf5", ".h5")
_DATASET_TYPES = ("play", "noisy", "stitch", "navigate", "explore")


def _split(env_name: str) -> tuple[list[str], int]:
    """The name's dash-separated parts and the position of ``singletask`` (-1 if none)."""
    parts = env_name.split("-")
    return parts, parts.index("singletask") if "singletask" in parts else -1


def is_host_task(env_name: str) -> bool:
    """OGBench manipspace singletask dataset names (``<env>-<type>-singletask[-taskK]-v0``,
    env cube / scene / puzzle) run their online phase through the bridge."""
    parts, pos = _split(env_name)
    return (pos >= 2 and parts[pos - 1] in _DATASET_TYPES
            and parts[0] in ("cube", "scene", "puzzle") and parts[-1].startswith("v"))


def env_id_of(env_name: str) -> str:
    """Dataset name → gymnasium id (``cube-single-play-singletask-task1-v0`` →
    ``cube-single-singletask-task1-v0``); any other name is returned unchanged."""
    parts, pos = _split(env_name)
    if pos >= 2 and parts[pos - 1] in _DATASET_TYPES:
        return "-".join(parts[:pos - 1] + parts[pos:])
    return env_name


@dataclasses.dataclass(frozen=True)
class RewardRule:
    """r ← r + shift, then (``sparse``) r ← −1·[r ≠ 0]; jnp or numpy arrays, any shape."""

    shift: float = 0.0
    sparse: bool = False

    def __call__(self, rewards):
        r = rewards + self.shift
        if self.sparse:
            r = -(r != 0).astype(r.dtype)
        return r


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What kind of task a run is (see the module docstring)."""

    env_name: str
    simulator: str  # one of SIMULATORS
    loader: str  # one of LOADERS
    rewards: RewardRule
    dataset_path: str | None = None
    note: str | None = None  # why there is no simulator (printed when online steps are asked)
    mjx_env: str | None = None  # the envs_mjx registry name, when it is not env_name

    @property
    def mjx_name(self) -> str:
        """The ``envs_mjx.registry`` name of the task's MJX env (``simulator == 'mjx'``)."""
        return self.mjx_env or self.env_name

    @property
    def has_env(self) -> bool:
        return self.simulator != "none"

    @property
    def on_host(self) -> bool:
        """The simulator runs on the host (non-JAX envs through the bridge)."""
        return self.simulator.endswith("-host")


def _no_env_note(env_name: str) -> str:
    return (f"note: {env_name!r} has no environment here (MJX task or OGBench manipspace "
            "singletask, robomimic/robosuite), so the online phase is skipped and nothing is "
            "evaluated; e.g. lift, cube-single-singletask-task1, "
            "cube-single-play-singletask-task1-v0")


def choose_physics(setting: str = "auto") -> str:
    """``--physics``: ``jax`` / ``warp`` as given; ``auto`` is ``warp`` on a GPU / TPU where
    ``mujoco_warp`` imports, else ``jax`` (Warp on a CPU compiles its kernels for minutes and
    steps a few times per second: fit for tests only)."""
    if setting != "auto":
        return setting
    import importlib.util

    import jax

    if jax.default_backend() != "cpu" and importlib.util.find_spec("mujoco_warp") is not None:
        return "warp"
    return "jax"


def _ogbench_port_name(env_name: str, physics: str) -> str:
    """``cube-single-play-singletask-task1-v0`` → ``ogbench-mjx/cube-single-singletask-task1:jax``;
    ValueError naming ``--env_backend`` when the port has no such env (scene, …)."""
    from envs_mjx import ogbench as port

    env_id = env_id_of(env_name).removesuffix("-v0")
    if env_id not in port.ENV_NAMES:
        families = sorted({n.split("-singletask")[0] for n in port.ENV_NAMES})
        raise ValueError(f"--env_backend=mjx: {env_name!r} has no MJX port (ported: "
                         f"{', '.join(families)}, -singletask-task1..5); run it with "
                         "--env_backend=host (ogbench's own env through the bridge)")
    return f"{mjx_registry.PORT_PREFIX}{env_id}:{physics}"


def resolve(env_name: str, dataset_path: str | None = None, sparse: bool = False,
            robosuite_ok: bool | None = None, dataset_dir: str | None = None,
            strict: bool = True, env_backend: str = "host", physics: str = "jax") -> TaskSpec:
    """The ``TaskSpec`` of a run.  ``robosuite_ok`` defaults to whether robosuite imports.
    With ``strict``, a name of no known kind and no ``dataset_path`` / ``dataset_dir`` (so no
    file to read) raises ValueError naming ``--env_name`` and the closest known names.
    ``env_backend='mjx'`` runs OGBench singletask names in the JAX port with ``physics``
    (``jax`` / ``warp``; see ``choose_physics``)."""
    path = dataset_path or None
    hdf5 = bool(path and path.endswith(HDF5_SUFFIXES))
    parts = env_name.split("-")
    if (len(parts) == 3 and parts[0] in data.ROBOMIMIC_EPISODE_LIMITS
            and parts[2] in OBS_TYPE_NAMES):
        try:  # robomimic-shaped: a misspelt part must not run under the wrong name
            data.parse_robomimic_env_name(env_name)
        except ValueError as e:
            raise ValueError(f"--env_name: {e}") from None
    if env_name in mjx_registry.ENV_NAMES:
        shift = mjx_tasks.reward_shift(env_name)
        if hdf5:  # the generator's robomimic-schema file of an MJX task: {0, 1} rewards
            return TaskSpec(env_name, "mjx", "robomimic-hdf5", RewardRule(-1.0, sparse), path)
        return TaskSpec(env_name, "mjx", "generated-npz", RewardRule(shift, sparse), path)
    if is_host_task(env_name):
        if env_backend == "mjx":  # the port keeps ogbench's rewards: Σ ok − n, no shift
            return TaskSpec(env_name, "mjx", "ogbench-npz", RewardRule(0.0, sparse), path,
                            mjx_env=_ogbench_port_name(env_name, physics))
        return TaskSpec(env_name, "ogbench-host", "ogbench-npz", RewardRule(0.0, sparse), path)
    if robosuite_env.is_robosuite_task(env_name, path):
        if robosuite_ok is None:
            robosuite_ok = robosuite_env.robosuite_available()
        rule = RewardRule(robosuite_env.REWARD_SHIFT, sparse)
        if robosuite_ok:
            return TaskSpec(env_name, "robosuite-host", "robomimic-hdf5", rule, path)
        note = (f"note: {env_name!r} is a robosuite task; {robosuite_env.INSTALL_NOTE}. "
                "The online phase and the evaluation are skipped; the offline phase runs.")
        return TaskSpec(env_name, "none", "robomimic-hdf5", rule, path, note)
    if hdf5 or data.is_robomimic_env(env_name):
        return TaskSpec(env_name, "none", "robomimic-hdf5", RewardRule(-1.0, sparse), path,
                        _no_env_note(env_name))
    if strict and path is None and not dataset_dir:
        _check_ogbench_name(env_name)
    return TaskSpec(env_name, "none", "ogbench-npz", RewardRule(0.0, sparse), path,
                    _no_env_note(env_name))


def task_of(cfg, strict: bool = True) -> TaskSpec:
    """``resolve`` with a ``TrainConfig``'s flags (``--physics=auto`` chosen by device)."""
    return resolve(cfg.env_name, cfg.dataset_path or None, cfg.sparse,
                   dataset_dir=cfg.ogbench_dataset_dir or None, strict=strict,
                   env_backend=getattr(cfg, "env_backend", "host"),
                   physics=choose_physics(getattr(cfg, "physics", "auto")))


def _check_ogbench_name(env_name: str) -> None:
    """The last kind left is an OGBench dataset name; anything else is a typo or an unknown
    task: one line naming the flag, the kinds of names, and the closest known names."""
    try:
        data.parse_ogbench_env_name(env_name)
        return
    except ValueError:
        pass
    robomimic = [f"{t}-{d}-{o}" for t in data.ROBOMIMIC_EPISODE_LIMITS for d in DATASET_TYPES
                 for o in ("low", "low_dim")]
    known = dict.fromkeys([*mjx_registry.ENV_NAMES, *robomimic])
    close = difflib.get_close_matches(env_name, list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"--env_name={env_name!r} is not a known task: expected an MJX task (lift, can, "
        "square, reach, cube-single[-singletask-taskN], cube-double…, puzzle-3x3…, "
        "puzzle-4x4…), an OGBench dataset name (cube-single-play-singletask-task1-v0), a "
        "robomimic name (lift-mh-low_dim), or any name with --dataset_path" + hint)
