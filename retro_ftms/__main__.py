"""`python -m retro_ftms` is the `retro-ftms` command."""

from retro_ftms.edge.cli import main

main()
