"""The one rule for the names of registered objects.

A name is made of letters, digits, '_', '-' and '.', and is not '.' or '..' alone: it then needs
no quoting in a `view:feature` reference (no ':'), a `view@v2` version reference (no '@'), a URL
path segment of the UI and the API (no '/', and no dot segment a browser would resolve), a shell
or a log line (no spaces, quotes or control characters). Feast repos name objects in snake_case
(sometimes with '-' or '.'), which the rule keeps. A data source unnamed in Feast style is named
by its path, table or query, so data source names are exempt from the characters (not from '.'
and '..'); the UI reaches them URL-quoted.
"""

from __future__ import annotations

import re

from repast.errors import DefinitionError

NAME_RULE = "letters, digits, '_', '-' and '.', not '.' or '..' alone"
_NAME = re.compile(r"[\w.-]+")  # \w: letters and digits of any script, and '_'


def check_name(label: str, name: str, *, any_characters: bool = False, at: str = "") -> None:
    """Raise DefinitionError naming the object (`label` such as FeatureView) unless `name` obeys
    the rule (with `any_characters`, only the dot segments are refused)."""
    where = f"{at}: " if at else ""
    if name in (".", ".."):
        raise DefinitionError(f"{where}{label} name {name!r} is not allowed: names are made of {NAME_RULE}")
    if not any_characters and (not isinstance(name, str) or not _NAME.fullmatch(name)):
        raise DefinitionError(f"{where}{label} name {name!r} is not allowed: names are made of {NAME_RULE} "
                              "(rename it)")
