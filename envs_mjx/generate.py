"""Offline dataset generation: ``python -m envs_mjx.generate --env cube-single-singletask-task1``.

Runs the task's scripted oracle vmapped in MJX in fixed-size batches and writes, under
``--out`` (default ``data/``), for dataset name ``<env>-oracle``:

- ``<name>.npz`` and ``<name>-val.npz`` (OGBench schema; ``--val_fraction`` of episodes),
- ``<name>.hdf5`` (robomimic schema; the validation episodes are ``mask/valid``),
- ``<name>-trajectories.png`` (top-down and side view of the gripper paths, by strategy).

``--source ogbench`` instead runs ogbench's own manipspace envs and scripted oracles (see
``envs_mjx.ogbench_generate``).

Deterministic given ``--seed``: episode i uses ``fold_in(PRNGKey(seed), i)`` and its tier
comes from a seeded permutation, so results do not depend on ``--batch``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from envs_mjx import datasets, registry
from envs_mjx.oracles.pick_place import TIERS
from envs_mjx.rollout import make_oracle_rollout
from envs_mjx.wrappers import EpisodeWrapper


def assign_tiers(num_episodes: int, mix: tuple[float, ...], seed: int) -> np.ndarray:
    """(num_episodes,) int32 tier ids with proportions ``mix`` (normalised), shuffled."""
    p = np.asarray(mix, np.float64) / np.sum(mix)
    counts = np.floor(p * num_episodes).astype(int)
    counts[np.argmax(p)] += num_episodes - counts.sum()
    tiers = np.repeat(np.arange(len(p)), counts).astype(np.int32)
    return np.random.default_rng(seed).permutation(tiers)


def _progress(done: int, total: int, t0: float, stream=sys.stderr) -> None:
    frac = done / max(total, 1)
    rate = done / max(time.time() - t0, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    bar = "#" * int(30 * frac)
    stream.write(f"\r[{bar:<30}] {done}/{total} episodes  {rate:6.1f} ep/s  eta {eta:5.0f}s")
    if done >= total:
        stream.write("\n")
    stream.flush()


@functools.lru_cache(maxsize=8)
def get_rollout(env_name: str):
    """Cached ``(env, wrapped env, jitted oracle rollout)`` per env name (one compile per
    batch size per process)."""
    base = registry.make(env_name)
    env = EpisodeWrapper(base)
    return base, env, make_oracle_rollout(env)


def generate_episodes(env_name: str, num_episodes: int, seed: int, batch: int = 64,
                      mix: tuple[float, ...] = (1.0, 1.0, 1.0),
                      progress: bool = True) -> tuple[list[dict], object]:
    """Run the oracle for ``num_episodes`` episodes; returns host episodes and the env.

    Cost: ceil(num_episodes / batch) calls of the cached compiled rollout (see
    ``get_rollout``); the first call per (env, batch) compiles (~40 s on 2 CPU cores).
    """
    base, _, rollout = get_rollout(env_name)
    tiers = assign_tiers(num_episodes, mix, seed)
    root = jax.random.PRNGKey(seed)
    episodes: list[dict] = []
    t0 = time.time()
    for start in range(0, num_episodes, batch):
        idx = np.arange(start, start + batch)
        keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.asarray(idx))
        tb = tiers[np.minimum(idx, num_episodes - 1)]
        eps = rollout(keys, jnp.asarray(tb))
        episodes += datasets.episodes_to_host(eps)[: num_episodes - start]
        if progress:
            _progress(len(episodes), num_episodes, t0)
    return episodes, base


def plot_trajectories(path: str, episodes: list[dict], title: str, env,
                      max_episodes: int = 90):
    """Top-down (x, y) and side (x, z) gripper paths coloured by strategy; failures dashed.

    Black squares: ``env.plot_points(qpos_0)`` (object / button positions at the start).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ep in episodes[:max_episodes]:
        q = ep["qpos"]
        ok = bool(ep["success"].any())
        kw = dict(color=colors[ep["strategy"] % 4], lw=0.8, alpha=0.7, ls="-" if ok else "--")
        axes[0].plot(q[:, 0], q[:, 1], **kw)
        axes[1].plot(q[:, 0], q[:, 2], **kw)
        pts = env.plot_points(q[0])
        axes[0].plot(pts[:, 0], pts[:, 1], "s", color="k", ms=3)
    for s, name in enumerate(env.oracle.STRATEGIES):
        axes[0].plot([], [], color=colors[s], label=name)
    axes[0].plot([], [], color="gray", ls="--", label="failed episode")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set(xlabel="x (m)", ylabel="y (m)", title="top-down gripper paths (squares: objects)",
                aspect="equal")
    axes[1].set(xlabel="x (m)", ylabel="z (m)", title="side view")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summarize(episodes: list[dict], strategies: tuple[str, ...]) -> dict:
    """Success rate and mean length per tier and per strategy."""
    succ = np.array([ep["success"].any() for ep in episodes])
    length = np.array([len(ep["actions"]) for ep in episodes])
    tier = np.array([ep["tier"] for ep in episodes])
    strat = np.array([ep["strategy"] for ep in episodes])
    out = {"episodes": len(episodes), "success": float(succ.mean())}
    for names, ids, label in ((TIERS, tier, "tier"), (strategies, strat, "strategy")):
        for k, name in enumerate(names):
            sel = ids == k
            if sel.any():
                out[f"{label}/{name}/n"] = int(sel.sum())
                out[f"{label}/{name}/success"] = float(succ[sel].mean())
                out[f"{label}/{name}/length"] = float(length[sel].mean())
    return out


def write_all(out_dir: str, name: str, episodes: list[dict], env, val_fraction: float,
              seed: int, plot: bool = True) -> dict[str, str]:
    """Write npz (+ -val), hdf5 and PNG for ``episodes``; returns the written paths."""
    os.makedirs(out_dir, exist_ok=True)
    n_val = int(round(val_fraction * len(episodes))) if len(episodes) > 1 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(episodes) > 1 else 0),
                len(episodes) - 1)
    train, val = episodes[: len(episodes) - n_val], episodes[len(episodes) - n_val :]
    paths = {"npz": os.path.join(out_dir, f"{name}.npz"),
             "val_npz": os.path.join(out_dir, f"{name}-val.npz"),
             "hdf5": os.path.join(out_dir, f"{name}.hdf5")}
    datasets.write_ogbench_npz(paths["npz"], train)
    if val:
        datasets.write_ogbench_npz(paths["val_npz"], val)
    else:
        paths.pop("val_npz")
    meta = {"env_name": env.name, "type": "envs_mjx", "seed": seed,
            "env_kwargs": {"episode_length": env.episode_length},
            "obs_keys": [k for k, _ in env.obs_layout()],
            "strategies": list(env.oracle.STRATEGIES), "fail_modes": list(env.oracle.FAIL_MODES),
            "tiers": list(TIERS)}
    valid_ids = set(range(len(train), len(episodes)))
    datasets.write_robomimic_hdf5(paths["hdf5"], episodes, env.obs_layout(), meta, env.xml,
                                  valid_ids, env.oracle.STRATEGIES)
    if plot:
        paths["png"] = os.path.join(out_dir, f"{name}-trajectories.png")
        plot_trajectories(paths["png"], episodes, f"{name}: oracle gripper paths by strategy",
                          env)
    return paths


DEFAULT_EPISODES = 300
SOURCES = ("mjx", "ogbench")


def ensure_dataset(env_name: str, out_dir: str = "data", num_episodes: int = DEFAULT_EPISODES,
                   seed: int = 0, batch: int = 64, progress: bool = True) -> dict[str, str]:
    """Paths of the default dataset ``<out_dir>/<env>-oracle*``; generated on first use.

    The cache key is the file name only: pass another ``out_dir`` (or delete the files) to
    regenerate with other settings. A JSON ``<name>.meta.json`` records how it was made.
    """
    name = f"{env_name}-oracle"
    paths = {"npz": os.path.join(out_dir, f"{name}.npz"),
             "val_npz": os.path.join(out_dir, f"{name}-val.npz"),
             "hdf5": os.path.join(out_dir, f"{name}.hdf5")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    episodes, env = generate_episodes(env_name, num_episodes, seed, batch, progress=progress)
    paths = write_all(out_dir, name, episodes, env, 0.1, seed)
    meta = {"env": env_name, "num_episodes": num_episodes, "seed": seed,
            "summary": summarize(episodes, env.oracle.STRATEGIES)}
    with open(os.path.join(out_dir, f"{name}.meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return paths


def main(argv: list[str] | None = None) -> dict:
    pre = argparse.ArgumentParser(prog="tper-generate", add_help=False)
    pre.add_argument("--source", choices=SOURCES, default="mjx")
    known, rest = pre.parse_known_args(argv)
    if known.source == "ogbench":  # ogbench's own envs and oracles: a separate command line
        from envs_mjx import ogbench_generate

        return ogbench_generate.main(rest)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", choices=SOURCES, default="mjx",
                   help="mjx: these MJX tasks (below); ogbench: ogbench's manipspace envs and "
                        "oracles (see `--source ogbench --help`)")
    p.add_argument("--env", default="cube-single-singletask-task1",
                   help=f"one of: {', '.join(registry.ENV_NAMES)}")
    p.add_argument("--num_episodes", "--episodes", type=int, default=300,
                   help="oracle episodes to generate (--episodes is the same flag)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64, help="episodes per compiled call")
    p.add_argument("--mix", default="1,1,1", help="better,okay,worse proportions")
    p.add_argument("--val_fraction", type=float, default=0.1)
    p.add_argument("--out", default="data")
    p.add_argument("--name", default=None, help="dataset name (default <env>-oracle)")
    p.add_argument("--no_plot", action="store_true")
    args = p.parse_args(argv)
    mix = tuple(float(x) for x in args.mix.split(","))
    if len(mix) != len(TIERS):
        p.error(f"--mix needs {len(TIERS)} comma-separated numbers, got {args.mix!r}")
    name = args.name or f"{args.env}-oracle"
    t0 = time.time()
    episodes, env = generate_episodes(args.env, args.num_episodes, args.seed, args.batch, mix)
    paths = write_all(args.out, name, episodes, env, args.val_fraction, args.seed,
                      plot=not args.no_plot)
    summary = summarize(episodes, env.oracle.STRATEGIES)
    summary["seconds"] = round(time.time() - t0, 1)
    print(json.dumps({"paths": paths, "summary": summary}, indent=1))
    return paths


def cli(argv: list[str] | None = None) -> int:
    """The ``tper-generate`` console script: :func:`main`, exit status 0 on success.

    (``main`` returns the written paths for callers in Python; a console script's return
    value is its exit status, and a dict there would read as failure.)"""
    main(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
