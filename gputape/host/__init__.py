"""The NumPy runtime under everything: pooled result buffers, worker threads, broadcast views.
It knows arrays only (no tensors, no tapes); dispatch, the walk and the host implementations
of ops use it."""
