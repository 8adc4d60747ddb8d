"""The contracts stages meet through: where everything of a run lives, and the typed artifacts.

`RunLayout` owns every path of a run folder. Each artifact one stage writes and another reads
has its type and its reader and writer here: SFT rows and trace records (Boost), the clustering
file and the experts manifest (Disentangle), and what a hypernetwork's identity is (Customize).

Names resolve on first use (bdc_ray/lazy.py): `bdc config check` needs `RunLayout`, not the
numpy the clustering reader brings.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(
    __name__,
    {
        "Clustering": ".clustering",
        "load_clustering": ".clustering",
        "read_clusters_json": ".clustering",
        "save_clustering": ".clustering",
        "ALL_DATA": ".experts",
        "ExpertEntry": ".experts",
        "ExpertManifest": ".experts",
        "LoraShape": ".experts",
        "TrainedAdapter": ".experts",
        "expert_name": ".experts",
        "load_manifest": ".experts",
        "manifest_path": ".experts",
        "save_manifest": ".experts",
        "HypernetIdentity": ".hypernet",
        "hypernet_identity": ".hypernet",
        "RunLayout": ".layout",
        "SFTProblem": ".sft",
        "SFTRow": ".sft",
        "problem_rows": ".sft",
        "prompt_response": ".sft",
        "read_sft_problems": ".sft",
        "read_sft_rows": ".sft",
        "training_rows": ".sft",
        "write_sft_rows": ".sft",
        "TraceRecord": ".traces",
        "finished_ids": ".traces",
        "read_traces": ".traces",
        "trace_path": ".traces",
        "write_trace": ".traces",
    },
)
