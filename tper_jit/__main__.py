"""``python -m tper_jit`` = ``tper-train``."""

import sys

from tper_jit.cli import main

sys.exit(main())
