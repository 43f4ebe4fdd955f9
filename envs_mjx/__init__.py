"""MJX manipulation tasks, scripted oracles and dataset generation (see docs/envs.md)."""

import contextlib as _contextlib
import io as _io

# before mujoco is first imported: EGL on headless Linux where libEGL loads
from envs_mjx.gl_backend import choose_headless_gl as _choose_headless_gl

_choose_headless_gl()


def _import_mjx_quietly() -> None:
    # mujoco.mjx probes its optional Warp backend at import and prints "Failed to import
    # warp: No module named 'warp'" to stdout when it is not installed (the normal case on
    # CPU); drop exactly those lines and pass anything else through (a broken install).
    buf = _io.StringIO()
    with _contextlib.redirect_stdout(buf):
        from mujoco import mjx  # noqa: F401
    for line in buf.getvalue().splitlines():
        if line.startswith(("Failed to import warp:", "Failed to import mujoco_warp:")) and (
                "No module named 'warp'" in line):
            continue
        print(line)


_import_mjx_quietly()
