"""``tper-train`` (also ``python -m tper_jit``): the trainer's command line.

With no arguments it runs the quickstart (``configs/quickstart.py``: the full method on the
MJX ``lift`` task, sized for a 2-core CPU).  Flags follow the seed's README
(``--env_name=square-mh-low --horizon_length=5 --agent.alpha=100 --cluster_sampler=True``)
plus ``--config configs/<preset>.py``,
``--cluster_k``, ``--dataset_path``.  ``tper-train --help`` lists every flag with its default.
"""

from __future__ import annotations

import dataclasses
import sys

from tper_jit.agents import registry
from tper_jit.config import flag_help, flags
from tper_jit.config.flags import TrainConfig
from tper_jit.config.presets import QUICKSTART
from tper_jit.oper.config import OPERConfig
from tper_jit.run import resume
from tper_jit.run.driver import Diverged, Interrupted
from tper_jit.run.train import train


def parse_args(argv: list[str]) -> TrainConfig:
    """The command line → ``TrainConfig``, ``--agent.*`` checked against the config class of
    ``--agent_type`` (``agents.registry``) and ``--oper.*`` against ``OPERConfig``."""
    return flags.parse_args(argv, registry.config_class, OPERConfig)


def _help() -> str:
    """Every flag with its default and its one-line description (the field's comment)."""
    lines = ["usage: tper-train [--config FILE] [--flag=value ...] [--agent.key=value ...]", "",
             "With no arguments: the quickstart (configs/quickstart.py: cluster-balanced offline",
             "-> T-PER online on the MJX lift task, sized for a 2-core CPU).", "",
             "  --config=FILE  a preset (configs/*.py); flags after it override it",
             "  --agent=agents/acfql.py  QC's agent file: agents/acfql.py = --agent_type=acfql, "
             "agents/acrlpd.py = --agent_type=rlpd", "",
             "flags (default):"]
    lines += _flag_lines(TrainConfig, "--", skip=("agent", "oper"))
    sections = [(f"agent flags, --agent_type={name}" + (" (default):" if name == "acfql"
                                                         else ":"), spec.config_cls)
                for name, spec in registry.AGENTS.items()]
    for title, cls in (*sections, ("OPER flags (default):", OPERConfig)):
        lines += ["", title]
        lines += _flag_lines(cls, "--oper." if cls is OPERConfig else "--agent.")
    lines += ["", "QC's agent keys (actor_hidden_dims, init_temp, ...) are accepted as README.md "
              "'Coming from QC / FQL' lists."]
    return "\n".join(lines)


def _flag_lines(cls: type, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    described = flag_help.field_help(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(f"  {f'{prefix}{f.name}={default}':<38}  {described[f.name]}")
    return out


def resolve_argv(argv: list[str]) -> list[str]:
    """No arguments = the quickstart preset (``configs/quickstart.py``)."""
    if argv:
        return argv
    out = []
    for k, v in QUICKSTART.items():
        if k == "agent":
            out += [f"--agent.{ak}={','.join(map(str, av)) if isinstance(av, tuple) else av}"
                    for ak, av in v.items()]
        else:
            out.append(f"--{k}={v}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = resolve_argv(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(_help())
        return 0
    try:
        cfg = parse_args(argv)
        if cfg.resume:
            cfg = _resume_config(cfg, argv)
        registry.agent_config(cfg)  # validate the agent overrides before loading anything
    except (ValueError, FileNotFoundError) as e:
        print(f"tper-train: error: {e}", file=sys.stderr)
        return 2
    try:
        train(cfg)  # --resume: folder, config and checkpoint are checked before any data
    except resume.RunComplete as e:
        print(f"tper-train: {e}", file=sys.stderr)
        return 0
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"tper-train: error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"tper-train: stopped: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"tper-train: {e}", file=sys.stderr)
        return 128 + e.signum
    return 0


def _resume_config(cfg: TrainConfig, argv: list[str]) -> TrainConfig:
    """``--resume RUN_DIR [flags]``: the run's stored config; the flags given must match it
    except the ones that do not change what is computed."""
    names = [a[2:].partition("=")[0] for a in argv if a.startswith("--")]
    if "config" in names:
        raise ValueError("--resume uses the run's own config.json; drop --config")
    overrides = {n: getattr(cfg, n) for n in names
                 if n in {f.name for f in dataclasses.fields(TrainConfig)} and n != "agent"}
    if any(n.startswith("agent.") for n in names):
        overrides["agent"] = dict(cfg.agent)
    return resume.config_from_run(cfg.resume, overrides)


if __name__ == "__main__":
    sys.exit(main())
