"""`python -m repast` runs the `repast` command."""

from repast.cli import run

run()
