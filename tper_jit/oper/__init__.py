"""OPER: offline prioritized experience replay (ALGORITHM §7, seed 002)."""
