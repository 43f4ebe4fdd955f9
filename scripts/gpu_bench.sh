#!/usr/bin/env bash
# Every benchmark on a lent GPU in one call of the `device` tool (README "Benchmarks").
#
# 1. Here, once per checkout (optional: without it the MJX benchmarks are listed as skipped,
#    because the device image has JAX but no mujoco / mujoco-mjx):
#        bash scripts/gpu_bench.sh wheels
#    downloads the MJX wheels for the device's Python 3.12 into .whl/ (~21 MB, git-ignored
#    through .git/info/exclude).  ogbench (the bridge benchmark) is not among them.
# 2. The device tool's run, carry [".whl"], timeout_s 590:
#        bash scripts/gpu_bench.sh
#    installs the carried wheels (no network), then runs
#        python3 -m tper_jit.bench all --budget-s 480 --out $OUT/benchmarks_gpu.md
#    (progress in $OUT/bench_all.log) and prints the table; both files come back.
# BUDGET_S overrides the 480 s (the session has 15 minutes of device time in all, start-up
# and transfers included).
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = "wheels" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl mujoco==4.0.1 mujoco-core==4.0.1 \
        mujoco-mjx==3.17.0 trimesh==5.2.0 glfw==2.11.0 pyopengl==3.1.10
fi
OUT="${OUT:-/tmp/bench_out}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache  # shared by the benchmark processes
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
python3 -m tper_jit.bench all --budget-s "${BUDGET_S:-480}" --out "$OUT/benchmarks_gpu.md" \
    2> "$OUT/bench_all.log"
rc=$?
grep '^\[bench all\]' "$OUT/bench_all.log" | tail -n 20
cat "$OUT/benchmarks_gpu.md"
exit $rc
