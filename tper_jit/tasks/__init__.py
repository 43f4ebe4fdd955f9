"""Tasks: what kind of task a run is, and its environments.

``resolve.resolve(env_name, dataset_path, sparse) -> TaskSpec`` is the only place that tests
names: the simulator (``mjx`` | ``ogbench-host`` | ``robosuite-host`` | ``none``), the loader
(``datasets.load_dataset``) and the reward rule applied alike to offline rows and online
transitions.  ``mjx_tasks`` (MJX task data and vec envs), ``host_env`` / ``robosuite_env``
(CPU envs stepped by chunks on the host) and ``evaluation`` (jitted MJX rollouts) are its
environments.
"""
