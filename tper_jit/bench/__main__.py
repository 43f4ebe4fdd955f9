"""Command-line entry of the benchmarks: ``python -m tper_jit.bench <name> [options]``.

``all`` runs every benchmark within a time budget (``suite.py``); it imports none of the
benchmark modules itself, so it starts even where one of them cannot be imported (no
mujoco, say) and records that one as skipped or failed.
"""

from __future__ import annotations

import argparse
import sys

NAMES = ("sampler", "update", "online", "seeds", "bridge", "ogbench-mjx")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["all"]:
        from tper_jit.bench import suite

        return suite.main(argv[1:])
    from tper_jit.bench import bridge, ogbench_mjx, online, sampler, seeds, suite, update

    modules = {"sampler": sampler, "update": update, "online": online, "seeds": seeds,
               "bridge": bridge, "ogbench-mjx": ogbench_mjx}
    parser = argparse.ArgumentParser(prog="python -m tper_jit.bench",
                                     description="tper-jit benchmarks")
    sub = parser.add_subparsers(dest="name", required=True)
    for name in NAMES:
        modules[name].add_arguments(
            sub.add_parser(name, help=modules[name].__doc__.splitlines()[0]))
    suite.add_arguments(sub.add_parser("all", help=suite.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    modules[args.name].run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
