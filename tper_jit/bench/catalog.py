"""The benchmarks ``python -m tper_jit.bench all`` runs: order, sizes, cost estimates.

Each entry names its entry point as a string (the suite never imports a benchmark module
itself: each one runs in its own process, see ``worker.py``), the section title it has in
``docs/benchmarks.md``, and its arguments and estimated wall seconds for every size preset:

- ``cpu``: what this project's 2-core VM measures in a few minutes (docs/benchmarks.md's
  sizes or smaller);
- ``accel``: bigger n / batch / env counts for a GPU or TPU (``jax.default_backend()`` is
  not ``cpu``), for a lent H200 whose session has 15 minutes of device time in all;
- ``tiny``: seconds each, for tests and a quick check that every benchmark still runs.

Estimates are wall seconds of the whole process (interpreter and JAX start, data, every
compile, the timed calls).  The ``cpu`` ones come from the runs recorded in
docs/benchmarks.md on the shared 2-core VM (``bench all`` itself, 2026-12-03, for the first
four); the ``accel`` ones from the first H200 run (2026-12-04, docs/benchmarks.md) where it
measured them, guesses for seeds-online and bridge (not measured there).
The list is in priority order: the suite runs them in this order and skips whatever no
longer fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

PRESETS = ("cpu", "accel", "tiny")
MJX = ("mujoco", "mujoco.mjx")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # the section heading of docs/benchmarks.md
    target: str  # "pkg.module" (add_arguments + run) or "pkg.module:function" (function(argv))
    command: str  # the stand-alone command that runs it
    sizes: dict[str, tuple[tuple[str, ...], float]]  # preset -> (argv, estimated seconds)
    requires: tuple[str, ...] = ()  # importable modules it needs
    markdown: bool = False  # its output is already a markdown table (else a code block)

    def argv(self, preset: str) -> list[str]:
        return list(self.sizes[preset][0])

    def estimate(self, preset: str) -> float:
        return float(self.sizes[preset][1])


def _a(text: str) -> tuple[str, ...]:
    return tuple(text.split())


REGISTRY: list[Benchmark] = [
    Benchmark(
        "update", "ACFQL gradient steps: fused chunk vs per-step host sampling",
        "tper_jit.bench.update", "python -m tper_jit.bench update", {
            "cpu": (_a("--chunk 10 --repeats 2 --agents"), 40),
            "accel": (_a("--chunk 50 --repeats 5 --agents"), 50),
            "tiny": (_a("--hidden 16 --batch 8 --rows 500 --chunk 2 --repeats 1 --agents"), 25),
        }),
    Benchmark(
        "sampler", "T-PER sampler: sample + priority update",
        "tper_jit.bench.sampler", "python -m tper_jit.bench sampler", {
            "cpu": ((), 80),
            "accel": (_a("--steps 200"), 130),
            "tiny": (_a("--n 50 --transitions 2000 --steps 3 --ref-steps 2 --repeats 1 "
                        "--update-hidden 16 --update-batch 8 --update-rows 2000"), 20),
        }),
    Benchmark(
        "seeds", "Vmapped seeds, offline phase",
        "tper_jit.bench.seeds", "python -m tper_jit.bench seeds", {
            "cpu": (_a("--seeds 1 2 4 --steps 100"), 110),
            "accel": (_a("--seeds 1 2 4 8 16 --steps 200"), 90),
            "tiny": (_a("--seeds 1 2 --steps 3 --hidden 8 --batch 8 --rows 400 --repeats 1 "
                        "--num-envs 2"), 45),
        }, requires=MJX, markdown=True),
    Benchmark(
        "online", "Online phase: fused chunk vs host loop",
        "tper_jit.bench.online", "python -m tper_jit.bench online", {
            "cpu": (_a("--iterations 3 --repeats 2"), 180),
            "accel": (_a("--num-envs 64 --iterations 4 --repeats 2"), 150),
            "tiny": (_a("--env reach --num-envs 2 --horizon 2 --batch 8 --hidden 16 "
                        "--iterations 1 --repeats 1"), 120),
        }, requires=MJX),
    Benchmark(
        "envs", "MJX environments: env steps/s vs C MuJoCo",
        "envs_mjx.bench:main", "python -m envs_mjx.bench", {
            "cpu": (_a("--tasks cube-single-singletask-task1,lift --batches 16,128"), 90),
            "accel": (_a("--tasks cube-single-singletask-task1,lift --batches 1024,8192"), 140),
            "tiny": (_a("--tasks reach --batches 2 --steps 2 --repeats 1 --c_seconds 0.2"), 35),
        }, requires=MJX),
    Benchmark(
        "agents", "The other agents and options (fused rows of bench update)",
        "tper_jit.bench.update", "python -m tper_jit.bench update", {
            "cpu": (_a("--hidden 256 256 --batch 128 --chunk 5 --repeats 2 --utd 5"), 110),
            "accel": (_a("--chunk 20 --repeats 3"), 105),
            "tiny": (_a("--hidden 8 --batch 4 --rows 400 --chunk 2 --repeats 1 --utd 2 "
                        "--critic-d-model 8 --critic-heads 2 --critic-layers 1"), 90),
        }),
    Benchmark(
        "seeds-online", "Vmapped seeds, online phase",
        "tper_jit.bench.seeds", "python -m tper_jit.bench seeds", {
            "cpu": (_a("--phase online --seeds 1 2 --num-envs 8 --iterations 4 --hidden 64 64 "
                       "--batch 64 --rows 20000 --repeats 2"), 140),
            "accel": (_a("--phase online --seeds 1 2 4 8 --num-envs 64 --iterations 4 "
                         "--repeats 2"), 200),
            "tiny": (_a("--phase online --seeds 1 2 --num-envs 2 --iterations 1 --hidden 8 "
                        "--batch 8 --rows 400 --repeats 1"), 180),
        }, requires=MJX, markdown=True),
    Benchmark(
        "bridge", "Host-env bridge (ogbench on the host) vs the fused MJX chunk",
        "tper_jit.bench.bridge", "python -m tper_jit.bench bridge", {
            "cpu": ((), 240),  # 162 s with the env-workers rows (2 shared cores), + seeds
            "accel": (_a("--num-envs 16 --batch 256 --hidden 256 256"), 220),
            "tiny": (_a("--num-envs 2 --horizon 2 --batch 8 --hidden 8 --iterations 1 "
                        "--repeats 1 --seeds 1 2"), 140),
        }, requires=MJX + ("ogbench",)),
    Benchmark(
        "ogbench-mjx", "The OGBench port in MJX: env steps/s vs ogbench's C env",
        "tper_jit.bench.ogbench_mjx", "python -m tper_jit.bench ogbench-mjx", {
            "cpu": (_a("--batches 1 16 --steps 5 --backends jax"), 130),
            "accel": (_a("--batches 1 16 256 4096 --steps 10"), 150),
            "tiny": (_a("--batches 1 --steps 1 --repeats 1 --backends jax --c-seconds 0.2"),
                     150),
        }, requires=MJX + ("ogbench",)),
]


def by_name(registry: list[Benchmark] | None = None) -> dict[str, Benchmark]:
    return {b.name: b for b in (REGISTRY if registry is None else registry)}
