"""The run report: one Markdown file with PNG plots, rebuilt from a run folder's artifacts.

It reads only what the stages wrote to storage (traces, clusters, manifests, tables), never a
stage's internals, so `bdc report RUN_DIR` works on any finished or half-finished run, on a
laptop or against object storage, long after the cluster that produced it is gone.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {"build_report": ".build", "write_trace_page": ".explorer"})
