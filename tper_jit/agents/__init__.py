"""Agents, each a module of pure functions ``init / update / act`` beside its config.

``AGENTS`` maps the ``--agent`` name to its module; look names up with ``get_agent`` so a
misspelled name raises instead of silently matching nothing.
"""

from __future__ import annotations

from types import ModuleType

from tper_jit.agents import acfql

AGENTS: dict[str, ModuleType] = {"acfql": acfql}


def get_agent(name: str) -> ModuleType:
    """The agent module registered as ``name``; unknown names raise with the known ones."""
    try:
        return AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {sorted(AGENTS)}") from None
