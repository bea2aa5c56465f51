"""The ``ntdb`` command line (click), one module per command group."""
