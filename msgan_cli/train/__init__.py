"""The training engine: the loop (loop.py), its session set-up (session.py), distributed helpers,
checkpoints, TensorBoard output and the `report` collector."""
