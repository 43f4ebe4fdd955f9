"""``RLPDConfig`` (ALGORITHM §8): the RLPD hyperparameters, every field an ``--agent.<field>``
flag, validated when built, and the ``PRESETS`` of RLPD / RLPD-AC / QC-RLPD.  The agent's
functions are in ``rlpd.py``."""

from __future__ import annotations

import dataclasses

from tper_jit.agents import config_checks as checks


@dataclasses.dataclass(frozen=True)
class RLPDConfig:
    """RLPD hyperparameters (ALGORITHM §8 defaults); every field is ``--agent.<field>``."""

    lr: float = 3e-4  # Adam learning rate of the critic, the actor and the temperature
    batch_size: int = 256  # b, rows per critic step; the trainer samples b · utd_ratio rows
    utd_ratio: int = 20  # critic steps per update (actor and temperature step once)
    discount: float = 0.99  # γ; the critic bootstraps with γ^H
    tau: float = 0.005  # Polyak rate of the target critic, applied after every critic step
    hidden_dims: tuple[int, ...] = (256, 256)  # hidden widths of the critics and the actor
    critic_layer_norm: bool = True  # Dense → LayerNorm → ReLU in the critics
    num_qs: int = 10  # critic ensemble size E
    num_min_qs: int = 2  # distinct members drawn per critic step; the target is their min
    init_temperature: float = 1.0  # α at initialisation (the parameter is log α)
    target_entropy: float | None = None  # None: −K/2 (K the flat action dim)
    backup_entropy: bool = True  # subtract α·log π(a'|s') inside the bootstrap
    log_std_min: float = -20.0  # clip of the actor's log σ
    log_std_max: float = 2.0  # clip of the actor's log σ (upper end)
    action_chunking: bool = False  # actor outputs an H·A chunk; False: single actions
    horizon_length: int = 1  # H, chunk length / n of the n-step return
    bc_alpha: float = 0.0  # weight of the BC term −log π(a_data | s) in the actor loss

    def __post_init__(self):
        checks.normalise_tuples(self, "hidden_dims")
        checks.enforce(self, [
            *checks.common(self),
            ("utd_ratio", checks.is_int(self.utd_ratio) and self.utd_ratio >= 1,
             "must be an integer >= 1"),
            ("num_min_qs", checks.is_int(self.num_min_qs) and 1 <= self.num_min_qs <= self.num_qs,
             "must be an integer in [1, num_qs]"),
            ("init_temperature", self.init_temperature > 0, "must be > 0"),
            ("log_std_min", self.log_std_min < self.log_std_max, "must be < log_std_max"),
            ("bc_alpha", self.bc_alpha >= 0, "must be >= 0"),
        ], bools=("critic_layer_norm", "backup_entropy", "action_chunking"))

    def flat_action_dim(self, action_dim: int) -> int:
        """K: H·A with action chunking, A without."""
        return self.horizon_length * action_dim if self.action_chunking else action_dim

    def entropy_target(self, action_dim: int) -> float:
        """The temperature's target entropy: ``target_entropy`` or −K/2."""
        if self.target_entropy is not None:
            return float(self.target_entropy)
        return -self.flat_action_dim(action_dim) / 2.0

    @property
    def rows_per_update(self) -> int:
        """B = batch_size · utd_ratio: the rows one ``update`` consumes."""
        return self.batch_size * self.utd_ratio



# RLPD (one-step), RLPD-AC (chunked actor and critic) and QC-RLPD (chunked + BC term).
PRESETS: dict[str, RLPDConfig] = {
    "rlpd": RLPDConfig(),
    "rlpd-ac": RLPDConfig(action_chunking=True, horizon_length=5, bc_alpha=0.0),
    "qc-rlpd": RLPDConfig(action_chunking=True, horizon_length=5, bc_alpha=0.01),
}
