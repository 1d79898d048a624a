"""``python -m modelgen``: the same command as ``modelgen``."""

from .cli import main

main()
