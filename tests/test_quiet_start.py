"""Start-up output: the commands print no optional-backend probe noise (issue 18, item 5)."""

import subprocess
import sys


def test_commands_start_without_failed_to_import_lines():
    for mod in ("tper_jit", "envs_mjx.generate"):
        p = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        out = p.stdout + p.stderr
        assert "Failed to import" not in out, out[:2000]
        assert "usage" in out.lower()
