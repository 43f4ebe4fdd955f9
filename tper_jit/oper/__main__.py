"""``python -m tper_jit.oper --out W.npz [trainer flags] [--oper.key=value ...]``: the OPER-A
pre-stage (ALGORITHM §7) on the dataset the trainer would load with the same flags.

Runs ``--oper.num_seeds`` pre-stages vmapped in one jitted program, averages their weights
and writes ``W.npz``; train with ``--oper.bc_eval=True --oper.weight_path=W.npz`` plus
``--oper.resample=True`` or ``--oper.reweight=True``.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = None
    rest = []
    for i, a in enumerate(argv):
        if a.startswith("--out="):
            out = a.split("=", 1)[1]
        elif a == "--out" and i + 1 < len(argv):
            out = argv[i + 1]
        elif i == 0 or argv[i - 1] != "--out":
            rest.append(a)
    if not out or any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0 if out else 2
    import jax

    from tper_jit.agents import registry
    from tper_jit.config.flags import parse_args
    from tper_jit.oper import advantage
    from tper_jit.oper.config import OPERConfig
    from tper_jit.tasks import datasets

    try:
        cfg = parse_args(rest, registry.config_class, OPERConfig)
        ocfg = OPERConfig(**cfg.oper)
        dataset = datasets.load_dataset(cfg)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"python -m tper_jit.oper: error: {e}", file=sys.stderr)
        return 2
    print(f"OPER-A pre-stage on {dataset.meta.sources[0]} ({len(dataset)} transitions): "
          f"{ocfg.iter} rounds, {ocfg.first_eval_steps}/{ocfg.bc_eval_steps} value steps, "
          f"n_step {ocfg.n_step}, {ocfg.num_seeds} seeds", flush=True)
    t0 = time.perf_counter()
    w = advantage.compute_oper_a_weights(dataset, jax.random.PRNGKey(cfg.seed), ocfg)
    path = advantage.save_weights(out, w, dataset, ocfg)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f}s (weights mean {w.mean():.3f}, "
          f"max {w.max():.3f}, min {w.min():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
