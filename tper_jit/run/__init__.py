"""A run: ``train.train(cfg)`` sets everything up once and hands it to ``driver.Driver``
(phases, evaluation, logging, NaN stop, signals); ``checkpoint`` (orbax), ``resume``
(``--resume``: checks, restore, log truncation) and ``logger`` (run folder, CSV / JSONL /
wandb, progress) are its I/O.
"""
