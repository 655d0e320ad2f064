"""The composition root: one module per command group, wiring backends, judges and the UI.

Shared pieces: ``common`` (errors, options, libraries, the run store), ``wiring`` (model
configs into backends and judges) and ``views`` (every rich rendering). They import no other
command module, so the command modules above them form no import cycle.
"""
