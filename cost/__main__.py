"""``python -m cost``: see :mod:`cost.cli`."""

from cost.cli import main

main()
