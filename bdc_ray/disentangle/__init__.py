"""Disentangle (DisenLoRA): split Boost's verified solutions by problem type, one LoRA expert each.

Why: problems of different kinds (arithmetic, string handling, stdin programs...) pull one
adapter in different directions, so a single LoRA trained on everything is a compromise. The
stage clusters the problems by a sentence embedding of their text (embed, clusters), trains one
expert per cluster and one all-data baseline (experts), and keeps the centroids, which Customize
turns into per-problem routing features and Serve compares each request against.

Clustering is a pure core (embed, clusters, cluster_plot; cluster_stage ties them to storage);
expert training runs on Ray Train (experts, expert_worker, lora_train).
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "ClusterConfig": ".cluster_config",
    "DEFAULT_EMBEDDER": ".cluster_config",
    "DisentangleStage": ".config",
    "EmbedderError": ".embed",
    "ExpertsConfig": ".expert_config",
    "centroid_similarity": ".clusters",
    "clusters_table": ".tables",
    "embed_texts": ".embed",
    "manifest_table": ".tables",
    "run_cluster_stage": ".cluster_stage",
    "run_train_stage": ".experts",
    "source_rows_file": ".source",
})
