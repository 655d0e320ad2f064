"""The terminal UI (Textual): browse scenarios, watch or take part in episodes, fork them,
review stored runs and follow batches. Start it with ``clinsim tui``."""
