"""`python -m repast` runs the `repast` command."""

from repast.cli.main import run

run()
