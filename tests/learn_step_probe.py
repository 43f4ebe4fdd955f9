"""Record which phases trace through ``tper_jit.loop.learn_step.learn_step``.

``probe(monkeypatch)`` replaces the name in the modules that call it (``loop.offline``,
``loop.online``; the host bridge reaches it through ``online.make_observe_and_learn``) by a
wrapper that notes the step's metric prefix, then calls the real step; the returned list
fills up as the compiled chunks are traced."""

from __future__ import annotations

from tper_jit.loop import learn_step as ls
from tper_jit.loop import offline, online


def probe(monkeypatch) -> list[str]:
    seen: list[str] = []

    def recording(spec, carry, keys):
        seen.append(spec.prefix)
        return ls.learn_step(spec, carry, keys)

    for mod in (offline, online):
        monkeypatch.setattr(mod, "learn_step", recording)
    return seen
