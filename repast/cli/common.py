"""What every `repast` command module shares: the Typer app, the consoles, the --repo and
--version options, opening the FeatureStore, and the one mapping of a RepastError to
`Error: ...` and exit code 1.

Command modules (repast/cli/main.py, repast/cli/ui_command.py, ...) import this one, never each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from repast.cli.help_format import install as install_help_style
from repast.errors import RepastError

install_help_style()
# `-h` is help wherever a command has no `-h` of its own (Click drops a help name a command uses):
# `serve` and `ui` keep Feast's `-h` for --host.
app = typer.Typer(help="repast: a feature store for machine learning.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True,
                  context_settings={"help_option_names": ["-h", "--help"]})
console = Console()
err_console = Console(stderr=True)
_state: dict[str, Any] = {"repo": None, "opened": []}


def _print_version(value: bool) -> None:
    if value:
        from repast.version import __version__

        print(f"repast {__version__}")
        raise typer.Exit()


@app.callback()
def main(repo: Path = typer.Option(None, "--repo", metavar="PATH",
                                   help="Feature repo directory (default: the current directory)."),
         chdir: Path = typer.Option(None, "--chdir", "-c", metavar="PATH",
                                    help="Change to this directory first, then run the command there (Feast's "
                                         "option: paths a repo builds from os.curdir resolve in it)."),
         show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                           help="Print the installed repast version and exit."),
         verbose: bool = typer.Option(False, "--verbose",
                                      help="Show the engines' own console output (Spark's log lines and "
                                           "progress bars), hidden otherwise.")) -> None:
    """Declare features in Python, apply them, build training data and serve them online."""
    import os

    os.environ["REPAST_QUIET_ENGINES"] = "0" if verbose else "1"  # read by repast/offline/spark_console.py
    if chdir is not None:
        if not chdir.is_dir():
            raise typer.BadParameter(f"'{chdir}' is not a directory", param_hint="--chdir")
        os.chdir(chdir)
    _state["repo"] = repo


def open_store() -> Any:
    """The repo's FeatureStore; closed (its pools and threads released) when the command ends."""
    from repast.store import FeatureStore

    store = FeatureStore(repo_path=_state["repo"])
    _state["opened"].append(store)
    return store


def close_opened_stores() -> None:
    """Close every store a command opened (user_errors calls this when the command ends)."""
    opened: list[Any] = _state["opened"]
    while opened:
        opened.pop().close()


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a RepastError as one message and exit 1, instead of a traceback; close the stores
    the command opened, however it ends."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RepastError as e:
            # Escaped: a message may hold brackets (`pip install "repast[server]"`) that rich would
            # otherwise read as markup and drop.
            err_console.print(f"[bold red]Error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            try:
                close_opened_stores()
            except RepastError:
                pass  # a store that cannot be reached to close holds nothing worth reporting over the result
    return wrapper
