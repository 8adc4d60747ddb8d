"""Serve: the customized solver on Ray Serve, OpenAI-compatible, batched, autoscaled (DESIGN.md section 5).

Pure core: config.py (the `serve:` section), api.py (request/response models and limits),
auth.py (bearer keys), engine.py (requests -> batched forward passes over the CustomizedSolver),
solve.py (best-of-n verified in the sandbox), deploy_config.py (the Serve config YAML).
Ray shell: app.py (FastAPI ingress deployment, serve.batch, `build_app`), cli.py (`bdc serve`).
demo.py builds a small deployable solver from scratch for trying, testing and load-testing.
"""
