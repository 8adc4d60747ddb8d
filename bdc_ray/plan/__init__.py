"""`bdc plan`: what a config asks a cluster for, stage by stage, before anything runs.

It reads every section (so it sits at the top, beside config.py): the requests each stage's
actors, tasks, Train workers and Tune trials make, fitted to the node types of a cluster file
(nodes.py) and bin-packed onto them (packing.py), and an estimate of each stage's wall time and
GPU-hours from named throughput figures (throughput.py). Pure functions; nothing starts Ray.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "ClusterFile": ".nodes",
    "ClusterFileError": ".nodes",
    "NodeType": ".nodes",
    "format_bundle": ".nodes",
    "kuberay_cluster_spec": ".nodes",
    "kuberay_custom_resources": ".nodes",
    "kuberay_node_types": ".nodes",
    "launcher_node_types": ".nodes",
    "read_cluster_file": ".nodes",
})
