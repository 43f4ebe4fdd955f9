"""Run configuration: ``flags.TrainConfig`` (the seed's flags, validated at construction),
the generic command-line parser and ``--config`` preset loader (``flags``), and the shipped
flag sets (``presets``).  Imports nothing of the trainer; ``tper_jit.cli.parse_args`` passes
in the agent and OPER config classes that ``--agent.*`` / ``--oper.*`` are checked against.
"""
