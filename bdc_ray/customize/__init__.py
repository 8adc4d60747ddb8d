"""Customize: an input-aware hypernetwork mixes the LoRA experts rank-wise per problem (DESIGN.md section 4).

Pure torch core: composed_lora.py (the layer's math), inject.py (experts -> composed model),
materialize.py (one routing vector -> a plain peft folder), hypernet.py, features.py, data.py,
train.py, checkpoint.py, solver.py. Ray shell: tune.py (Ray Tune over the trainer), stage.py.
"""
