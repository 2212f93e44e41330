"""The CUDA side of gputape: fused kernels from ``kernels/``, compiled lazily with CuPy.

Nothing here imports CuPy at import time; the kernels are built the first time a fused op runs
on a GPU, once per device, and cached (CuPy also caches the compiled binaries on disk).
"""
