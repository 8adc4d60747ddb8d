"""Serve: the customized solver on Ray Serve, OpenAI-compatible, batched, autoscaled (DESIGN.md section 5).

Pure core: config.py (the `serve:` section), api.py (request/response models and limits),
auth.py (bearer keys), decode.py (the incremental decode loop: per-row settings and routing
weights in one forward per step, rows leaving the batch), engine.py (what the app asks of an
engine; the transformers engine: requests -> one decode per batch over the CustomizedSolver,
streamed as it goes), vllm_routing.py and vllm_engine.py (`serve.engine: vllm`: each routing
quantised, folded into an adapter kept in an LRU, sent as a LoRARequest), chat.py (messages -> prompt),
streaming.py (SSE in OpenAI's chunk format), test_shapes.py (/solve's tests as users write them),
solve.py (best-of-n verified in the sandbox), deploy_config.py (the Serve config YAML).
Ray shell: app.py (FastAPI ingress deployment, serve.batch, `build_app`), stage.py (what to serve
from a run folder, writing the Serve config, starting the application).
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "AppArgs": ".deploy_config",
    "ServeConfig": ".config",
    "ServeSetupError": ".stage",
    "bind": ".stage",
    "resolve_app_args": ".stage",
    "serve_stage": ".stage",
    "start_app": ".stage",
    "write_serve_config": ".stage",
})
