"""clinsim's engine: schemas, model backends, the episode graph, the patient agent and the CLI."""

from simulator.version import __version__

__all__ = ["__version__"]
