"""Command-line entry of the benchmarks: ``python -m tper_jit.bench <name> [options]``."""

from __future__ import annotations

import argparse
import sys

from tper_jit.bench import bridge, online, sampler, seeds, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tper_jit.bench",
                                     description="tper-jit benchmarks")
    sub = parser.add_subparsers(dest="name", required=True)
    sampler.add_arguments(sub.add_parser("sampler", help=sampler.__doc__.splitlines()[0]))
    update.add_arguments(sub.add_parser("update", help=update.__doc__.splitlines()[0]))
    online.add_arguments(sub.add_parser("online", help=online.__doc__.splitlines()[0]))
    seeds.add_arguments(sub.add_parser("seeds", help=seeds.__doc__.splitlines()[0]))
    bridge.add_arguments(sub.add_parser("bridge", help=bridge.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    if args.name == "online":
        online.run(args)
    elif args.name == "sampler":
        sampler.run(args)
    elif args.name == "update":
        update.run(args)
    elif args.name == "seeds":
        seeds.run(args)
    elif args.name == "bridge":
        bridge.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
