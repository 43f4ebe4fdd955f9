"""tper-jit: T-PER on ACFQL, end-to-end jitted in JAX.

Folders by layer (each imports only those before it; ``tests/test_layers.py``):
``config`` → ``data`` → ``replay`` → ``agents`` → ``oper`` → ``tasks`` → ``loop`` → ``run``,
with ``cli`` / ``bench`` on top and ``stats`` / ``seed_axis`` / ``plots`` / ``summary`` below
everything.  ``docs/architecture.md`` has the map.
"""

# mujoco's OpenGL backend (MUJOCO_GL) is chosen in envs_mjx/gl_backend.py, which every path
# that imports mujoco (MJX tasks, the ogbench/robosuite bridge) imports first.
