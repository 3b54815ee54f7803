"""`python -m core.cli`: the `amshortcut` command without the console script."""

from core.cli import main

main()
