"""MJX manipulation tasks, scripted oracles and dataset generation (see docs/envs.md)."""

import contextlib as _contextlib
import io as _io
import os as _os
import sys as _sys

# mujoco picks its OpenGL backend when first imported; without a display its default (GLFW)
# cannot render, so headless Linux gets EGL unless MUJOCO_GL says otherwise (videos only).
if _sys.platform.startswith("linux") and not (_os.environ.get("DISPLAY")
                                              or _os.environ.get("WAYLAND_DISPLAY")):
    _os.environ.setdefault("MUJOCO_GL", "egl")


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
