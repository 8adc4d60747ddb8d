"""Torch CPU threads matched to the CPUs a process actually holds.

On small machines more OpenMP threads than reserved cores made training and generation several
times slower (notes/PLATFORM.md, "Threads on 2 cores"). Ray sets OMP_NUM_THREADS for every task
and actor from its num_cpus, so honouring that variable is enough inside Ray.
"""

from __future__ import annotations

import os


def configure_torch_threads(requested: int | None) -> int:
    """Set torch's intra-op threads (process-wide) and return the count in effect."""
    import torch

    threads = requested
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else None
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()
