"""How `repast --help` shows options and arguments: as click does, not as typer 0.2x does.

typer renders every option's Python type after it (`--json <bool>`, `--views <list[str]>`), so
flags look as if they took a value, and required arguments as `{name}` in usage lines. Here flags
show no type, options that take values show their metavar, and usage lines name arguments in
capitals (`repast materialize [OPTIONS] START END`). Applied once, when the CLI is imported; a
typer without these hooks is left as it is.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from typer import core

    option_type = getattr(core.TyperOption, "display_type_rich", None)
    if option_type is not None:
        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if self.is_flag or self.count:
                return None  # a flag takes no value
            return option_type(self, ctx)  # type: ignore[no-any-return]

        core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    if hasattr(core.TyperArgument, "_usage_display_name"):
        def usage_name(self: Any) -> str:
            name = (self.metavar or self.name or "").upper()
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        core.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
