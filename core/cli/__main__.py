"""`python -m core.cli`: the `amshortcut` command without the console script."""

from core.cli import main

if __name__ == "__main__":
    main()
