"""The version of repast (its own module, so that the server and the CLI can read it without
importing the whole public API in repast/__init__.py)."""

__version__ = "0.1.0"
