"""bdc-ray: Boost, Disentangle, Customize (arXiv 2502.12492) as a distributed Ray application."""

__version__ = "0.1.0"
