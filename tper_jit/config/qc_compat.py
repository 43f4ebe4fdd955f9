"""QC's (``github.com/ColinQiyangLi/qc``) command-line spellings, mapped onto ours.

QC's ``main.py`` picks the agent with an ml_collections config file (``--agent=agents/acfql.py``,
``main_online.py``: ``agents/acrlpd.py``) and overrides its keys with ``--agent.<key>=value``.
Its files are not read here: the file's name selects our ``--agent_type`` and every QC agent
key either has the same name here, is renamed (``init_temp`` → ``init_temperature``), or is a
QC option this trainer does not have — accepted at the value that means "off" in QC, a
one-line error naming the key at any other value.  Nothing is dropped silently.
"""

from __future__ import annotations

import os
from typing import Any

# QC's agent config files → our --agent_type.
AGENT_FILES = {"acfql": "acfql", "acrlpd": "rlpd"}

# QC's --save_interval default (-1: no agent checkpoints) = our 0 (checkpoints at phase ends).
SAVE_INTERVAL_NEVER = -1

# QC's --dataset_replace_interval default: the only value that can be honoured (see
# TrainConfig: every --ogbench_dataset_dir shard is loaded at once and sampled i.i.d.).
DATASET_REPLACE_INTERVAL = 1000

_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null", ""}


def agent_type_from_file(value: str) -> str:
    """``--agent=agents/acfql.py`` → ``acfql``; ``agents/acrlpd.py`` → ``rlpd``."""
    stem = os.path.splitext(os.path.basename(str(value)))[0]
    if stem not in AGENT_FILES:
        raise ValueError(f"--agent={value}: QC agent config files are "
                         f"{', '.join(f'agents/{k}.py' for k in AGENT_FILES)} (--agent_type="
                         f"{'/'.join(AGENT_FILES.values())}); use --agent_type=NAME and "
                         "--agent.<key>=value here")
    return AGENT_FILES[stem]


def _is_false(v: Any) -> bool:
    return v is False or str(v).strip().lower() in _FALSE


def _is_none(v: Any) -> bool:
    return v is None or str(v).strip().lower() in _NONE


def _refuse(key: str, value: Any, why: str) -> ValueError:
    return ValueError(f"--agent.{key}={value}: {why}")


def translate_agent(over: dict[str, Any], agent_type: str) -> tuple[dict[str, Any], str | None]:
    """QC's ``--agent.<key>`` overrides → ours, and the agent type ``agent_name`` asks for.

    Returns ``(overrides, agent_type from --agent.agent_name or None)``.  Keys that exist here
    under the same name pass through unchanged (they are type-checked afterwards)."""
    over = dict(over)
    named = None
    if "agent_name" in over:
        named = agent_type_from_file(f"{over.pop('agent_name')}.py")
    agent_type = named or agent_type
    for key in ("ob_dims", "action_dim"):
        if key in over:
            raise _refuse(key, over[key], "set from the dataset here (a placeholder in QC)")
    if "actor_layer_norm" in over:
        v = over.pop("actor_layer_norm")
        if not _is_false(v):
            raise _refuse("actor_layer_norm", v, "the actors here never use LayerNorm "
                          "(QC's default False)")
    if "encoder" in over:
        v = over.pop("encoder")
        if not _is_none(v):
            raise _refuse("encoder", v, "no visual encoders here (state observations only)")
    # QC has separate actor / critic widths; ours share one --agent.hidden_dims.
    widths = {k: over.pop(k) for k in ("actor_hidden_dims", "value_hidden_dims") if k in over}
    if "hidden_dims" in over:
        widths["hidden_dims"] = over["hidden_dims"]
    spelled = {k: _dims(v) for k, v in widths.items()}
    if len(set(spelled.values())) > 1:
        raise ValueError(f"--agent.{'/'.join(spelled)}: every network here has the same "
                         f"widths (--agent.hidden_dims); got {widths}")
    if widths:
        over["hidden_dims"] = next(iter(widths.values()))
    if agent_type == "rlpd":
        _rlpd(over)
    else:
        _acfql(over)
    return over, named


def _acfql(over: dict[str, Any]) -> None:
    for key, why in (("normalize_q_loss", "Q-loss normalisation is not implemented here"),
                     ("use_fourier_features", "Fourier observation features are not "
                                              "implemented here")):
        if key in over and not _is_false(over[key]):
            raise _refuse(key, over[key], f"{why} (QC's default False)")
        over.pop(key, None)
    # QC builds Fourier features only with use_fourier_features=True: without them the width
    # has no effect there either.
    over.pop("fourier_feature_dim", None)


def _rlpd(over: dict[str, Any]) -> None:
    if "layer_norm" in over:
        over["critic_layer_norm"] = over.pop("layer_norm")
    if "init_temp" in over:
        over["init_temperature"] = over.pop("init_temp")
    over.pop("alpha", None)  # in QC's acrlpd config but read nowhere (the temperature is learnt)
    if "target_entropy_multiplier" in over:
        v = over.pop("target_entropy_multiplier")
        if float(v) != 0.5:
            raise _refuse("target_entropy_multiplier", v, "the target entropy here is "
                          "-K/2 unless --agent.target_entropy=VALUE sets it; use that")
    if "q_agg" in over:  # QC: mean or min over all num_qs members
        raise _refuse("q_agg", over["q_agg"], "the RLPD target here is the min over "
                      "--agent.num_min_qs members drawn per step (QC's q_agg=min is "
                      "--agent.num_min_qs=<num_qs>); there is no ensemble mean")


def _dims(v: Any) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v)
    parts = [p for p in str(v).strip("()[] ").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--agent.hidden_dims: cannot read {v!r} as widths") from None
