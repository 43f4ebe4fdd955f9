"""A tiny training run in its own process (for kill / signal / device-count tests).

    python tests/tiny_run.py OUT_NPZ [--flag=value ...]

Trains on a synthetic reach-shaped dataset (MJX online phase with ``--online_steps``), or on
``--dataset_path`` when given (the bridge's resume test), through
``tper_jit.cli`` semantics — ``--resume RUN_DIR`` included — and writes the final agent
parameters (every seed) to ``OUT_NPZ``.  The exit code is the CLI's.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The one tiny reach configuration of the end-to-end tests (test_resume's subprocess runs,
# test_seeds' single-seed run, test_train_online).  Every value here shapes the compiled
# programs, so runs that share it share executables through the session's persistent
# compilation cache (tests/conftest.py) instead of compiling them again; what the tests vary
# (online_steps, eval_interval, save_interval, seed) only drives the host loop.
TINY = {"env_name": "reach", "offline_steps": 20, "log_interval": 10, "num_envs": 2,
        "horizon_length": 2, "eval_episodes": 2, "start_training": 8, "ptr_warmup_steps": 10,
        "use_ptr_backward": True, "use_ptr_online_priority": True, "buffer_size": 400,
        "wandb": False, "progress": False}
TINY_AGENT = ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]


def tiny_argv(**over) -> list[str]:
    """``TINY`` with ``over`` as command-line flags (agent flags included)."""
    return [f"--{k}={v}" for k, v in {**TINY, **over}.items()] + TINY_AGENT


def tiny_dataset():
    """The synthetic reach-shaped offline data of the tiny runs (20 episodes of 20 rows)."""
    from tper_jit.data.common import make_synthetic_dataset

    return make_synthetic_dataset(15, n=400, episode_length=20, env_name="reach")


def main(argv: list[str]) -> int:
    import jax
    import numpy as np

    from tper_jit.cli import _resume_config, parse_args
    from tper_jit.run.driver import Diverged, Interrupted
    from tper_jit.run.train import train

    out, flags = argv[0], argv[1:]
    cfg = parse_args(flags)
    if cfg.resume:
        cfg = _resume_config(cfg, flags)
    ds = None if cfg.dataset_path else tiny_dataset()  # a file (e.g. the bridge's) is read
    try:
        result = train(cfg, ds)
    except Interrupted as e:
        print(e, file=sys.stderr, flush=True)
        return 128 + e.signum
    except (Diverged, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    leaves = jax.tree.leaves(result.state.agent.params)
    np.savez(out, *[np.asarray(x) for x in leaves])
    print(f"RUN_DIR={result.run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
