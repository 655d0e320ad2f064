"""The Textual terminal UI (run, watch, take part, review). Not built yet."""
