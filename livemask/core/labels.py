"""Class names in words, for people: the one mapping from the model's class names to what a screen shows.

Machine names (``no_mask``) stay in every record, event log and JSON answer; only pixels and page
text use the words. A class this table does not know is shown title-cased with underscores as spaces
(``face_shield`` -> ``Face Shield``), so a new model's classes never appear in snake_case.
"""

from __future__ import annotations

DISPLAY_NAMES = {"mask": "Mask", "no_mask": "No mask", "mask_incorrect": "Mask below nose"}


def display_name(name: str) -> str:
    """``no_mask`` -> ``No mask``; an unknown ``face_shield`` -> ``Face Shield``."""
    known = DISPLAY_NAMES.get(name)
    if known is not None:
        return known
    return " ".join(part.capitalize() if part.islower() else part for part in str(name).replace("_", " ").split())


def display_names(class_names) -> dict[str, str]:
    """``{machine name: words}`` for every class of a model (what a page or legend needs)."""
    return {name: display_name(name) for name in class_names}
