"""The core layer: Tensor and Variable, devices, dtypes, errors, nests, and the primitive
registry with ``dispatch.apply``, the one function every op goes through (it records the
tape entries). It imports nothing above it (the layers are in ``.importlinter``)."""
