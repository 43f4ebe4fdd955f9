"""One benchmark process of ``python -m tper_jit.bench all`` (the suite never imports JAX).

    python -m tper_jit.bench.worker probe            # one JSON line: backend, devices, versions
    python -m tper_jit.bench.worker run TARGET ARG…  # run one benchmark, its table on stdout

``TARGET`` is ``pkg.module`` (its ``add_arguments(parser)`` and ``run(args)``, the benchmark
modules' public entry points) or ``pkg.module:function`` (``function(argv)``).  Each
benchmark in its own process: a crash, an abort inside XLA or a GPU out-of-memory ends that
process only, the suite can stop it at its time limit, and the accelerator's memory is free
again for the next one.  On an exception the last stderr line is ``benchmark failed: …``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import traceback
from importlib import metadata


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def probe() -> dict:
    """The backend and devices JAX sees, and the versions of the packages that matter."""
    info = {"python": platform.python_version(),
            **{d: _version(d) for d in ("jax", "jaxlib", "mujoco", "mujoco-mjx", "ogbench")}}
    try:
        import jax

        devs = jax.devices()
        info.update(backend=jax.default_backend(), device_kind=devs[0].device_kind,
                    device_count=len(devs))
    except Exception as e:  # noqa: BLE001 - reported, the suite falls back to CPU sizes
        info.update(backend="unknown", device_kind=f"jax failed: {e}", device_count=0)
    return info


def run_target(target: str, argv: list[str]) -> None:
    module, _, func = target.partition(":")
    mod = importlib.import_module(module)
    if func:
        getattr(mod, func)(argv)
        return
    parser = argparse.ArgumentParser(prog=module)
    mod.add_arguments(parser)
    mod.run(parser.parse_args(argv))


def main(argv: list[str]) -> int:
    if argv[:1] == ["probe"]:
        print(json.dumps(probe()), flush=True)
        return 0
    if len(argv) < 2 or argv[0] != "run":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        run_target(argv[1], argv[2:])
    except SystemExit as e:  # argparse errors
        if e.code not in (0, None):
            print(f"benchmark failed: bad arguments (exit {e.code})", file=sys.stderr)
            return 2
    except BaseException as e:  # noqa: BLE001 - any failure becomes the recorded error line
        traceback.print_exc()
        msg = " ".join(str(e).split())[:300]
        print(f"benchmark failed: {type(e).__name__}: {msg}", file=sys.stderr, flush=True)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
