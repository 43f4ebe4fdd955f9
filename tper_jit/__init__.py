"""tper-jit: T-PER on ACFQL, end-to-end jitted in JAX.

Folders by layer (each imports only those before it; ``tests/test_layers.py``):
``config`` → ``data`` → ``replay`` → ``agents`` → ``oper`` → ``tasks`` → ``loop`` → ``run``,
with ``cli`` / ``bench`` on top and ``stats`` / ``seed_axis`` / ``plots`` / ``summary`` below
everything.  ``docs/architecture.md`` has the map.
"""

import os as _os
import sys as _sys

# mujoco picks its OpenGL backend when first imported; without a display its default (GLFW)
# cannot render, so headless Linux gets EGL unless MUJOCO_GL says otherwise (videos only).
if _sys.platform.startswith("linux") and not (_os.environ.get("DISPLAY")
                                              or _os.environ.get("WAYLAND_DISPLAY")):
    _os.environ.setdefault("MUJOCO_GL", "egl")
