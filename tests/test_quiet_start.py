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


def test_headless_gl_choice():
    from envs_mjx.gl_backend import choose_headless_gl

    def egl(_name):
        return "libEGL.so.1"

    def none(_name):
        return None

    env = {}
    assert choose_headless_gl(env, "linux", egl) == "egl" and env == {"MUJOCO_GL": "egl"}
    # no libEGL (the GPU image had none): MUJOCO_GL=egl would make `import mujoco` fail
    env = {}
    assert choose_headless_gl(env, "linux", none) is None and env == {}
    env = {"DISPLAY": ":0"}
    assert choose_headless_gl(env, "linux", egl) is None and "MUJOCO_GL" not in env
    env = {"MUJOCO_GL": "osmesa"}
    assert choose_headless_gl(env, "linux", egl) == "osmesa" and env["MUJOCO_GL"] == "osmesa"
    env = {}
    assert choose_headless_gl(env, "darwin", egl) is None and env == {}


def test_mjx_imports_on_a_headless_machine_without_egl():
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
    code = ("import ctypes.util; ctypes.util.find_library = lambda name: None; "
            "import os, envs_mjx; from mujoco import mjx; print('GL', os.environ.get('MUJOCO_GL'))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "GL None" in p.stdout
