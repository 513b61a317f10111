"""``python -m changes``."""

from changes.cli import main

main()
