"""Which OpenGL backend mujoco gets on a machine without a display.

mujoco reads ``MUJOCO_GL`` once, when it is first imported.  Its default (GLFW) cannot open a
context without a display, so on headless Linux EGL is the useful choice — but only where
libEGL can be loaded: with ``MUJOCO_GL=egl`` and no libEGL, ``import mujoco`` itself fails
(PyOpenGL: ``'NoneType' object has no attribute 'eglQueryString'``), which took every MJX
benchmark down on a GPU image that ships no GL libraries.  Without libEGL the variable is
left alone: physics works, and only rendering (videos) fails, with its own error.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, MutableMapping


def choose_headless_gl(environ: MutableMapping[str, str] | None = None,
                       platform: str | None = None,
                       find_library: Callable[[str], str | None] = ctypes.util.find_library,
                       ) -> str | None:
    """Sets ``MUJOCO_GL=egl`` on headless Linux where libEGL loads; returns the value chosen.

    A ``MUJOCO_GL`` the user set is never changed; with a display nothing is set.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if "MUJOCO_GL" in environ:
        return environ["MUJOCO_GL"]
    if not platform.startswith("linux") or environ.get("DISPLAY") or environ.get(
            "WAYLAND_DISPLAY"):
        return None
    if find_library("EGL") is None:
        return None
    environ["MUJOCO_GL"] = "egl"
    return "egl"
