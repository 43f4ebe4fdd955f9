"""A tiny training run in its own process (for kill / signal / device-count tests).

    python tests/tiny_run.py OUT_NPZ [--flag=value ...]

Trains on a synthetic reach-shaped dataset (MJX online phase with ``--online_steps``) through
``tper_jit.cli`` semantics — ``--resume RUN_DIR`` included — and writes the final agent
parameters (every seed) to ``OUT_NPZ``.  The exit code is the CLI's.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main(argv: list[str]) -> int:
    import jax
    import numpy as np

    from tper_jit.cli import _resume_config, parse_args
    from tper_jit.data.common import make_synthetic_dataset
    from tper_jit.run.driver import Diverged, Interrupted
    from tper_jit.run.train import train

    out, flags = argv[0], argv[1:]
    cfg = parse_args(flags)
    if cfg.resume:
        cfg = _resume_config(cfg, flags)
    ds = make_synthetic_dataset(15, n=400, episode_length=20, env_name="reach")
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
