"""Agents: each a module of pure functions ``init / update / act`` beside its frozen config
and its ``SPEC`` (``spec.AgentSpec``: what the loop needs to drive it).

- ``acfql``: action-chunked flow Q-learning (QC's ACFQL, the T-PER paper's agent);
- ``rlpd``: RLPD / RLPD-AC (SAC with a critic ensemble, UTD inside ``update``);
- ``networks``, ``rlpd_networks``, ``transformer_critic``: their flax modules;
- ``registry``: ``--agent_type`` name → spec (``registry.get``, ``registry.spec_of``).
"""
