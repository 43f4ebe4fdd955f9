"""The reduced-budget learning runs of docs/results.md, as one reproducible queue (2-core CPU).

    python docs/results/cpu_suite.py --out RUNS_DIR [--workers 2] [--only PREFIX] [--skip TEXT]
                                     [--list] [--report]

Each entry is one ``tper-train`` (or OPER-A pre-stage) command line; entries run in order on
``--workers`` parallel processes.  ``RUNS_DIR/manifest.tsv`` gets one line per finished
entry (name, exit status, wall seconds, start time), and an entry already listed there with
status 0 is skipped, so an interrupted queue continues where it stopped.  OGBench datasets are
expected in ``RUNS_DIR/data`` (``tper-generate --source ogbench --env cube-single|puzzle-3x3
--type play --episodes 100 --workers 2 --out RUNS_DIR/data``); the MJX lift dataset is
generated on first use under ``RUNS_DIR/mjxdata``.

Budgets are a GPU run's ~1/300 (see the tables in docs/results.md): 3 000 offline gradient
steps, 6 000 online env steps, 2×256 networks, B 128, 8 envs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("--offline_steps=3000 --online_steps=6000 --num_envs=8 --buffer_size=100000 "
         "--start_training=1000 --ptr_warmup_steps=2000 --log_interval=1000 "
         "--eval_interval=3000 --agent.hidden_dims=(256,256) --agent.batch_size=128 "
         "--wandb=False --progress=False --save_interval=0")
RLPD_SMALL = "--offline_steps=0 --utd_ratio=5"  # UTD 20 → 5 on CPU (stated in results.md)
# The transformer critic scaled down like the MLPs (4x512 -> 2x256): d 128 / 2 blocks / 8 heads ->
# d 64 / 1 block / 4 heads, 1.9x an MLP-critic gradient step instead of 22x (docs/benchmarks.md).
TRANSFORMER_SMALL = ("--agent.critic_d_model=64 --agent.critic_num_layers=1 "
                     "--agent.critic_num_heads=4")
RECIPES = ("baseline", "cluster_balanced", "tper", "full")
OGB = {"cube-single": ("configs/ogbench_cube_single", "cube-single-play-v0.npz"),
       "puzzle-3x3": ("configs/ogbench_puzzle_3x3", "puzzle-3x3-play-v0.npz")}


def entries(out: Path) -> list[tuple[str, str]]:
    """``(name, command line)`` of every run, in queue order."""
    data, res = out / "data", out / "runs"
    runs: list[tuple[str, str]] = []
    oper_w = out / "oper_a_cube_single.npz"
    lift_w = out / "oper_a_lift.npz"
    oper_a_flags = ("--oper.iter=3 --oper.first_eval_steps=2000 --oper.bc_eval_steps=1000 "
                    "--oper.num_seeds=3")

    def ogb(task: str, recipe_flags: str, group: str, seed: int, cfg: str = "full") -> str:
        cdir, npz = OGB[task]
        return (f"tper-train --config {ROOT / cdir / cfg}.py --dataset_path={data / npz} "
                f"{SMALL} --eval_episodes=16 --cluster_k=3 --seed={seed} --run_group={group} "
                f"--save_dir={res / 'ogbench'} {recipe_flags}")

    # Issue 7: the seed's four recipes on two OGBench tasks through the host bridge.
    # Seeds 0-2 of every group come first; cube-single's seeds 3-4 close the queue.
    def issue7(task: str, seeds: range) -> list[tuple[str, str]]:
        return [(f"ogb/{task}/{r}/s{seed}", ogb(task, "", f"{r}-{task}", seed, r))
                for seed in seeds for r in RECIPES]

    runs += issue7("cube-single", range(3)) + issue7("puzzle-3x3", range(3))
    # Issue 8 on the MJX lift task: 3 vmapped seeds per program.
    lift = (f"--env_name=lift --dataset_episodes=300 {SMALL} --eval_episodes=32 --cluster_k=3 "
            f"--num_seeds=3 --save_dir={res / 'lift'}")
    lift_runs = {
        "baseline": "", "full": "",
        "oper_r": "", "acfql_transformer_d64": TRANSFORMER_SMALL,
        "oper_a": f"--oper.bc_eval=True --oper.resample=True --oper.weight_path={lift_w}",
        "rlpd": RLPD_SMALL, "rlpd_ac": RLPD_SMALL,
    }
    runs.append(("prestage/lift", f"python -m tper_jit.oper --out {lift_w} "
                 f"--config {ROOT}/configs/lift/baseline.py {lift.replace('--num_seeds=3', '')} "
                 f"{oper_a_flags}"))
    for name, extra in lift_runs.items():
        cfg = {"oper_a": "baseline", "acfql_transformer_d64": "acfql_transformer"}.get(name, name)
        runs.append((f"lift/{name}", f"tper-train --config {ROOT}/configs/lift/{cfg}.py {lift} "
                     f"--run_group={name}-lift {extra}"))
    # Issue 8 on OGBench cube-single (one seed per process through the bridge).
    cdir, npz = OGB["cube-single"]
    runs.append(("prestage/cube-single",
                 f"python -m tper_jit.oper --out {oper_w} --config {ROOT / cdir}/baseline.py "
                 f"--dataset_path={data / npz} {SMALL} {oper_a_flags}"))
    for seed in range(3):
        for name, cfg, extra in (
            ("oper_r", "oper_r", ""),
            ("oper_a", "baseline",
             f"--oper.bc_eval=True --oper.resample=True --oper.weight_path={oper_w}"),
            ("acfql_transformer_d64", "acfql_transformer", TRANSFORMER_SMALL),
            ("rlpd", "rlpd", RLPD_SMALL), ("rlpd_ac", "rlpd_ac", RLPD_SMALL),
        ):
            cmd = ogb("cube-single", extra, f"{name}-cube-single", seed, cfg)
            runs.append((f"ogb8/cube-single/{name}/s{seed}", cmd))
    return runs + issue7("cube-single", range(3, 5))


def report(manifest: Path) -> int:
    """Per group (an entry name without its ``/s<seed>``): finished runs, failures, and the
    mean wall time of one run (s)."""
    groups: dict[str, list[tuple[int, float]]] = {}
    for ln in manifest.read_text().splitlines():
        name, rc, sec, _ = ln.split("\t")
        group = name.rsplit("/s", 1)[0] if name.rsplit("/s", 1)[-1].isdigit() else name
        groups.setdefault(group, []).append((int(rc), float(sec)))
    for g, rs in groups.items():
        ok = [s for rc, s in rs if rc == 0]
        mean = sum(ok) / len(ok) if ok else float("nan")
        print(f"{g:<40} ok {len(ok)}  failed {len(rs) - len(ok)}  wall/run {mean:6.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", default="", help="run only entries whose name starts with this")
    p.add_argument("--skip", default="", help="leave out entries whose name contains this")
    p.add_argument("--list", action="store_true", help="print the commands and exit")
    p.add_argument("--report", action="store_true",
                   help="print each group's finished runs and mean wall time, and exit")
    args = p.parse_args(argv)
    if args.report:
        return report(args.out / "manifest.tsv")
    runs = [e for e in entries(args.out.resolve()) if e[0].startswith(args.only)
            and not (args.skip and args.skip in e[0])]
    if args.list:
        for name, cmd in runs:
            print(f"{name}\n    {cmd}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = args.out / "manifest.tsv"
    done = set()
    if manifest.exists():
        done = {ln.split("\t")[0] for ln in manifest.read_text().splitlines()
                if ln.split("\t")[1:2] == ["0"]}
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(args.out / "xla_cache"),
               TPER_JIT_DATA=str(args.out / "mjxdata"), PYTHONWARNINGS="ignore")
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)

    def run(entry: tuple[str, str]) -> None:
        name, cmd = entry
        if name in done:
            return
        t0 = time.time()
        with open(logs / (name.replace("/", "_") + ".log"), "w") as f:
            rc = subprocess.call(shlex.split(cmd), stdout=f, stderr=subprocess.STDOUT,
                                 env=env, cwd=ROOT)
        line = f"{name}\t{rc}\t{time.time() - t0:.0f}\t{time.strftime('%H:%M:%S')}\n"
        with open(manifest, "a") as f:
            f.write(line)
        print(line, end="", flush=True)

    # The pre-stages must finish before their OPER-A runs: run them first, alone.
    pre = [e for e in runs if e[0].startswith("prestage/")]
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(run, pre))
        list(pool.map(run, [e for e in runs if e not in pre]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
