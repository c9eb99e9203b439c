"""Operator and service commands of ``python -m worker``.

Each module here exports ``register(commands)``, which adds its sub-commands to the
argparse sub-parser collection and sets ``handler`` (a callable taking the parsed
arguments and returning an exit code) on each. ``worker.__main__`` lists the modules.
"""
