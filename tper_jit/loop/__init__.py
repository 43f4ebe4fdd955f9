"""The training loop's compiled parts: ``learn_step`` (the one learning step), the offline
chunk (``offline``), the MJX online iteration and the host-env bridge (``online``, ``host``),
the evaluation of every env kind (``evaluate``), sampler settings (``sampling``) and the
seed axis (``seeds``: the shared offline block, vmap and sharding over seeds).
"""
