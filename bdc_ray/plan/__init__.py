"""`bdc plan`: what a config asks a cluster for, stage by stage, before anything runs.

It reads every section (so it sits at the top, beside config.py): the requests each stage's
actors, tasks, Train workers and Tune trials make (stages.py), fitted to the node types of a
cluster file (nodes.py) and bin-packed onto them (packing.py), and each stage's wall time and
GPU-hours from named throughput figures (throughput.py); build.py puts them together, tables.py
prints them. Pure functions; nothing starts Ray.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "ClusterFile": ".nodes",
    "ClusterFileError": ".nodes",
    "NodeType": ".nodes",
    "Plan": ".build",
    "PlanError": ".build",
    "Throughput": ".throughput",
    "ThroughputError": ".throughput",
    "build_plan": ".build",
    "format_bundle": ".nodes",
    "kuberay_cluster_spec": ".nodes",
    "kuberay_custom_resources": ".nodes",
    "kuberay_node_types": ".nodes",
    "launcher_node_types": ".nodes",
    "load_throughput": ".throughput",
    "plan_tables": ".tables",
    "read_cluster_file": ".nodes",
})
