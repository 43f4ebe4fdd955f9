"""OPER settings (ALGORITHM §7, seed 002): one frozen dataclass, one comment per field.

Flag names follow the seed's case-study code (``resample``, ``reweight``, ``reweight_eval``,
``two_sampler``, ``bc_eval``, ``weight_path``, ``iter``, ``std``); the rest are this
project's names.  How the switches combine:

- ``resample``: the (actor) batch is drawn ∝ p (sampler kind ``"oper"``).
- ``reweight``: per-sample losses are multiplied by N·p of the sampled transition; which
  terms is chosen by ``reweight_eval`` (critic: "policy evaluation"), ``reweight_actor_q``
  (policy improvement), ``reweight_bc`` (the BC flow, ACFQL's policy constraint) and
  ``reweight_distill``.  Without ``reweight`` no term is weighted.
- ``two_sampler``: the critic gets its own transition-uniform batch and the actor the
  prioritized one (only meaningful with ``resample``).
"""

from __future__ import annotations

import dataclasses

PRIORITY_KINDS = ("R", "A")  # OPER-R (return) / OPER-A (iterated advantage)


@dataclasses.dataclass(frozen=True)
class OPERConfig:
    """Static OPER settings; validated on construction with messages naming the flag."""

    # --- how the priorities are used
    resample: bool = False  # draw batches ∝ p (sampler kind "oper")
    reweight: bool = False  # multiply per-sample losses by N·p
    reweight_eval: bool = True  # with reweight: also weight the critic (policy evaluation)
    reweight_actor_q: bool = True  # with reweight: weight the actor's Q term (improvement)
    reweight_bc: bool = True  # with reweight: weight the BC flow loss (the policy constraint)
    # The distillation only copies the flow policy at the batch states; weighting it is an
    # ablation, off by default so the one-step actor tracks the flow everywhere.
    reweight_distill: bool = False  # with reweight: weight the distillation loss (ablation)
    two_sampler: bool = False  # critic batch transition-uniform, actor batch prioritized

    # --- which priorities
    bc_eval: bool = False  # seed's name: True → OPER-A weights from weight_path, False → OPER-R
    weight_path: str = ""  # OPER-A .npz written by oper.advantage.save_weights
    base_prob: float = 0.0  # OPER-R: added to the min-max normalised return

    # --- normalisation before use (weights.normalize_priorities)
    std: float = 2.0  # target std of N·p
    eps: float = 0.1  # floor: p >= eps / N before the final renormalisation

    # --- the OPER-A pre-stage (oper.advantage)
    iter: int = 5  # K rounds of value fit → advantage → reweight
    n_step: int = 5  # n of the n-step value target (H for action chunks)
    first_eval_steps: int = 1_000_000  # value-fit steps of round 1 (from scratch)
    bc_eval_steps: int = 1_000_000  # value-fit steps of every later round (warm-started)
    num_seeds: int = 3  # pre-stage runs averaged (vmapped over seed keys)
    batch_size: int = 256  # value-fit minibatch
    hidden_dims: tuple[int, ...] = (256, 256)  # value net widths
    lr: float = 3e-4  # Adam learning rate of the value nets
    discount: float = 0.99  # γ of the value target
    tau: float = 0.005  # Polyak rate of the target value nets
    adv_batch: int = 4096  # rows per vectorised chunk when computing advantages

    def __post_init__(self):
        if isinstance(self.hidden_dims, list):
            object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        checks = [
            ("base_prob", self.base_prob >= 0, "must be >= 0"),
            ("std", self.std > 0, "must be > 0"),
            ("eps", 0.0 <= self.eps <= 1.0, "must be in [0, 1]"),
            ("iter", _pos_int(self.iter), "must be an integer >= 1"),
            ("n_step", _pos_int(self.n_step), "must be an integer >= 1"),
            ("first_eval_steps", _pos_int(self.first_eval_steps), "must be an integer >= 1"),
            ("bc_eval_steps", _pos_int(self.bc_eval_steps), "must be an integer >= 1"),
            ("num_seeds", _pos_int(self.num_seeds), "must be an integer >= 1"),
            ("batch_size", _pos_int(self.batch_size), "must be an integer >= 1"),
            ("hidden_dims", len(self.hidden_dims) > 0
             and all(_pos_int(h) for h in self.hidden_dims),
             "must be a non-empty tuple of positive integers"),
            ("lr", self.lr > 0, "must be > 0"),
            ("discount", 0.0 < self.discount <= 1.0, "must be in (0, 1]"),
            ("tau", 0.0 <= self.tau <= 1.0, "must be in [0, 1]"),
            ("adv_batch", _pos_int(self.adv_batch), "must be an integer >= 1"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"--oper.{name} {why}, got {getattr(self, name)!r}")
        if self.bc_eval and not self.weight_path and (self.resample or self.reweight):
            raise ValueError("--oper.bc_eval (OPER-A) needs --oper.weight_path, the .npz "
                             "written by tper_jit.oper.advantage.save_weights")
        if self.two_sampler and not self.resample:
            raise ValueError("--oper.two_sampler only applies with --oper.resample (it gives "
                             "the critic a uniform batch besides the prioritized one)")

    @property
    def enabled(self) -> bool:
        """Whether OPER changes training at all."""
        return self.resample or self.reweight

    @property
    def kind(self) -> str:
        """``"A"`` (advantage weights from ``weight_path``) or ``"R"`` (return weights)."""
        return "A" if self.bc_eval else "R"


def _pos_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1
