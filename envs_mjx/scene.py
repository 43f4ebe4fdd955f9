"""Primitive-shape MJCF scenes shared by every task: a table plane, a 4-dof gripper, objects.

The gripper is a floating hand on three world-aligned slide joints (x, y, z) and a yaw hinge,
carrying two box fingers on slide joints (positive = closing). Only boxes, capsules, spheres
and planes are used, so the model loads in MJX and steps fast on CPU (see FINDINGS: meshes
and cylinders are not an option there).

Joint order in ``qpos`` (always first): ``hand_x, hand_y, hand_z, hand_yaw, finger_l,
finger_r`` (6), followed by one free joint (7 qpos / 6 qvel) per object.

Collision filtering (``contype`` / ``conaffinity``): table 1/1, objects 1/3, fingers 2/0,
fixtures (bin walls, pegs) 1/1, buttons 0/4, the hand's pusher sphere 4/0. Fingers touch
objects only; objects touch everything but buttons; buttons touch only the pusher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARM_NQ = 6
"""Number of gripper qpos entries at the start of ``qpos`` (x, y, z, yaw, finger_l, finger_r)."""

TIMESTEP = 0.01
"""Physics step in seconds."""

N_SUBSTEPS = 5
"""Physics steps per environment step, so ``ctrl_dt = TIMESTEP * N_SUBSTEPS = 0.05 s``."""

FINGER_OPEN_Q = 0.0
FINGER_CLOSED_Q = 0.045
"""Finger slide targets (m) for gripper action -1 (open) and +1 (closed)."""

WORKSPACE_LO = (-0.3, -0.3, 0.012)
WORKSPACE_HI = (0.3, 0.3, 0.35)
"""Bounds (m) for the hand's position target (ee point = between the fingertips)."""


@dataclass(frozen=True)
class Box:
    """A free-floating box object. ``half`` are half extents (m); ``pos`` initial centre."""

    name: str
    half: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.9, 0.3, 0.2, 1.0)
    mass: float = 0.05
    pos: tuple[float, float, float] = (0.0, 0.0, 0.02)


@dataclass(frozen=True)
class Compound:
    """A free-floating rigid body made of several boxes: ``parts`` = ((half, pos), ...) in
    the body frame (e.g. the square nut: a ring of four boxes and a handle)."""

    name: str
    parts: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]
    rgba: tuple[float, float, float, float] = (0.8, 0.6, 0.2, 1.0)
    mass: float = 0.05
    pos: tuple[float, float, float] = (0.0, 0.0, 0.02)


@dataclass(frozen=True)
class Fixture:
    """A static box attached to the world (bin walls, a peg). ``half`` half extents (m)."""

    name: str
    half: tuple[float, float, float]
    pos: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.55, 1.0)


@dataclass(frozen=True)
class SceneSpec:
    """What to put on the table. ``markers`` are visual-only spheres (goal positions)."""

    objects: tuple[Box | Compound, ...] = ()
    fixtures: tuple[Fixture, ...] = ()
    markers: tuple[tuple[float, float, float], ...] = field(default_factory=tuple)
    buttons: tuple[tuple[float, float], ...] = ()  # xy centres of push buttons
    solver_iterations: int = 4
    ls_iterations: int = 4


def _fmt(v) -> str:
    return " ".join(f"{x:g}" for x in v)


def _object_xml(ob: Box | Compound) -> str:
    if isinstance(ob, Compound):
        m = ob.mass / len(ob.parts)
        geoms = "".join(
            f"""
      <geom name="{ob.name}_geom{k}" type="box" size="{_fmt(half)}" pos="{_fmt(pos)}"
            mass="{m:g}" rgba="{_fmt(ob.rgba)}" contype="1" conaffinity="3"
            friction="1.2 0.01 0.001"/>""" for k, (half, pos) in enumerate(ob.parts))
        return f"""
    <body name="{ob.name}" pos="{_fmt(ob.pos)}">
      <freejoint name="{ob.name}_joint"/>{geoms}
    </body>"""
    return f"""
    <body name="{ob.name}" pos="{_fmt(ob.pos)}">
      <freejoint name="{ob.name}_joint"/>
      <geom name="{ob.name}_geom" type="box" size="{_fmt(ob.half)}" mass="{ob.mass:g}"
            rgba="{_fmt(ob.rgba)}" contype="1" conaffinity="3" friction="1.2 0.01 0.001"/>
    </body>"""


def _fixture_xml(fx: Fixture) -> str:
    return f"""
    <geom name="{fx.name}" type="box" size="{_fmt(fx.half)}" pos="{_fmt(fx.pos)}"
          rgba="{_fmt(fx.rgba)}" contype="1" conaffinity="1"/>"""


BUTTON_HALF = (0.025, 0.025, 0.015)
BUTTON_TRAVEL = 0.015
"""Push buttons: boxes on a vertical slide joint (``qpos`` after the objects), sprung up,
pressed down by up to ``BUTTON_TRAVEL``; touched only by the hand's ``pusher`` sphere
(radius 12 mm at the ee point; contype 4) so only 9 cheap sphere-box pairs are added."""


def _button_xml(i: int, xy: tuple[float, float]) -> str:
    return f"""
    <body name="button{i}" pos="{xy[0]:g} {xy[1]:g} {BUTTON_HALF[2]:g}">
      <joint name="button{i}" type="slide" axis="0 0 1" range="{-BUTTON_TRAVEL:g} 0"
             stiffness="300" springref="0.005" damping="15" armature="0.2"/>
      <geom name="button{i}_geom" type="box" size="{_fmt(BUTTON_HALF)}" mass="0.02"
            rgba="0.6 0.6 0.65 1" contype="0" conaffinity="4"/>
    </body>"""


def build_xml(spec: SceneSpec) -> str:
    """Return the MJCF text for ``spec`` (gripper + table + objects + fixtures + markers)."""
    objects = "".join(_object_xml(o) for o in spec.objects)
    objects += "".join(_button_xml(i, xy) for i, xy in enumerate(spec.buttons))
    fixtures = "".join(_fixture_xml(f) for f in spec.fixtures)
    markers = "".join(
        f'\n    <site name="marker{i}" pos="{_fmt(p)}" size="0.012" rgba="0.2 0.8 0.2 0.5"/>'
        for i, p in enumerate(spec.markers)
    )
    return f"""<mujoco model="tper_manip">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" iterations="{spec.solver_iterations}"
          ls_iterations="{spec.ls_iterations}" integrator="Euler">
    <flag eulerdamp="disable"/>
  </option>
  <visual><global offwidth="320" offheight="240"/></visual>
  <default>
    <geom solref="0.02 1" solimp="0.95 0.99 0.001"/>
  </default>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1"/>
    <geom name="table" type="plane" size="0.5 0.5 0.05" rgba="0.8 0.8 0.75 1"
          contype="1" conaffinity="1"/>
    <body name="hand" pos="0 0 0" gravcomp="1">
      <joint name="hand_x" type="slide" axis="1 0 0" range="-0.35 0.35" damping="60"/>
      <joint name="hand_y" type="slide" axis="0 1 0" range="-0.35 0.35" damping="60"/>
      <joint name="hand_z" type="slide" axis="0 0 1" range="0 0.4" damping="60"/>
      <joint name="hand_yaw" type="hinge" axis="0 0 1" range="-3.2 3.2" damping="1"/>
      <inertial pos="0 0 0.07" mass="1" diaginertia="0.01 0.01 0.01"/>
      <geom name="palm" type="box" size="0.012 0.07 0.01" pos="0 0 0.075"
            rgba="0.3 0.3 0.35 1" contype="0" conaffinity="0"/>
      <site name="ee" pos="0 0 0" size="0.006" rgba="1 1 0 1"/>
      <geom name="pusher" type="sphere" size="0.012" pos="0 0 0" rgba="1 1 0 0.3"
            contype="4" conaffinity="0" mass="0.001"/>
      <body name="finger_l" pos="0 0.05 0" gravcomp="1">
        <joint name="finger_l" type="slide" axis="0 -1 0" range="0 0.05" damping="5"
               armature="0.01"/>
        <geom name="finger_l_geom" type="box" size="0.01 0.008 0.035" pos="0 0.008 0.03"
              mass="0.05" rgba="0.2 0.2 0.25 1" contype="2" conaffinity="0"
              condim="4" friction="1.5 0.03 0.001"/>
      </body>
      <body name="finger_r" pos="0 -0.05 0" gravcomp="1">
        <joint name="finger_r" type="slide" axis="0 1 0" range="0 0.05" damping="5"
               armature="0.01"/>
        <geom name="finger_r_geom" type="box" size="0.01 0.008 0.035" pos="0 -0.008 0.03"
              mass="0.05" rgba="0.2 0.2 0.25 1" contype="2" conaffinity="0"
              condim="4" friction="1.5 0.03 0.001"/>
      </body>
    </body>{fixtures}{objects}{markers}
  </worldbody>
  <actuator>
    <position name="act_x" joint="hand_x" kp="1000" ctrlrange="-0.35 0.35"/>
    <position name="act_y" joint="hand_y" kp="1000" ctrlrange="-0.35 0.35"/>
    <position name="act_z" joint="hand_z" kp="1000" ctrlrange="0 0.4"/>
    <position name="act_yaw" joint="hand_yaw" kp="20" ctrlrange="-3.2 3.2"/>
    <position name="act_fl" joint="finger_l" kp="200" ctrlrange="0 0.05"/>
    <position name="act_fr" joint="finger_r" kp="200" ctrlrange="0 0.05"/>
  </actuator>
</mujoco>
"""
