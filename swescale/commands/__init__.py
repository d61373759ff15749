"""The command line, one module per command group; each adds its commands with
``register(app)`` (swescale/cli.py lists them). The top layer: nothing imports it."""
