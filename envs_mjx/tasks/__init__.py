"""Task environments (each a subclass of ``envs_mjx.core.MjxEnv``)."""
