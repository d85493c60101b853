"""Run the command line: python -m digest."""

from .cli import main

main()
