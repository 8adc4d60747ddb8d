"""The contracts stages meet through: where everything of a run lives, and the typed artifacts.

`RunLayout` owns every path of a run folder. Each artifact one stage writes and another reads
has its type and its reader and writer here: SFT rows and trace records (Boost), the clustering
file and the experts manifest (Disentangle), and what a hypernetwork's identity is (Customize).
"""

from bdc_ray.artifacts.clustering import Clustering, load_clustering, read_clusters_json, save_clustering
from bdc_ray.artifacts.experts import (
    ALL_DATA,
    ExpertEntry,
    ExpertManifest,
    LoraShape,
    TrainedAdapter,
    expert_name,
    load_manifest,
    manifest_path,
    save_manifest,
)
from bdc_ray.artifacts.hypernet import HypernetIdentity, hypernet_identity
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.artifacts.sft import (
    SFTProblem,
    SFTRow,
    problem_rows,
    prompt_response,
    read_sft_problems,
    read_sft_rows,
    training_rows,
    write_sft_rows,
)
from bdc_ray.artifacts.traces import TraceRecord, finished_ids, read_traces, trace_path, write_trace

__all__ = [
    "ALL_DATA",
    "Clustering",
    "ExpertEntry",
    "ExpertManifest",
    "HypernetIdentity",
    "LoraShape",
    "RunLayout",
    "SFTProblem",
    "SFTRow",
    "TraceRecord",
    "TrainedAdapter",
    "expert_name",
    "finished_ids",
    "hypernet_identity",
    "load_clustering",
    "load_manifest",
    "manifest_path",
    "problem_rows",
    "prompt_response",
    "read_clusters_json",
    "read_sft_problems",
    "read_sft_rows",
    "read_traces",
    "save_clustering",
    "save_manifest",
    "trace_path",
    "training_rows",
    "write_sft_rows",
    "write_trace",
]
