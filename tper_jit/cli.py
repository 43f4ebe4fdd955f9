"""``tper-train``: the trainer's command line (reserved; the fused trainer is not built yet).

The name is registered in pyproject so that the entry point is stable; until the trainer
lands it says so and exits with status 2 rather than pretending to train.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    del argv
    print("tper-train: the trainer is not implemented yet in this version; the replay core "
          "(tper_jit.replay) and `python -m tper_jit.bench sampler` are available.",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
