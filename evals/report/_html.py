"""The one way the report builds markup: elements whose text and attributes are escaped.

Everything that reaches a page from an agent, a dataset, a judge or a contract is untrusted
text. It goes through :func:`esc` (``html.escape``) — and nothing else turns a string into
markup: :func:`el` escapes every child that is not already :class:`Html` and every attribute
value, so a page cannot be built from an unescaped string by accident. The only :class:`Html`
made from a plain string outside this module is the page's own CSS and script, which are
constants of this package.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

__all__ = ["Html", "el", "esc", "join"]

_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9:-]*$")


class Html(str):
    """A fragment that is already safe markup (built by :func:`el` or :func:`esc`)."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape any value as HTML text or an attribute value (``&``, ``<``, ``>``, quotes)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def _attribute_name(name: str) -> str:
    # Python keywords and dashes: class_ → class, data_case → data-case, aria_label → aria-label.
    name = "class" if name in {"cls", "class_"} else name.rstrip("_").replace("_", "-")
    if not _NAME.match(name):
        raise ValueError(f"not an attribute name: {name!r}")
    return name


def _children(items: Iterable[object]) -> Iterable[str]:
    for item in items:
        if item is None or item is False:
            continue
        if isinstance(item, (str, int, float)):
            yield esc(item)
        else:
            yield from _children(item)  # type: ignore[arg-type]


def el(tag: str, *children: object, **attrs: object) -> Html:
    """An element: ``el("td", value, cls="num")``; strings are escaped, :class:`Html` is not.

    Attribute values are escaped too; ``True`` renders a bare attribute and ``None`` or
    ``False`` leaves it out. Children may be nested iterables; ``None`` is skipped.
    """
    if not _NAME.match(tag):
        raise ValueError(f"not a tag name: {tag!r}")
    parts = [f"<{tag}"]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = _attribute_name(key)
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    parts.append(">")
    if tag in _VOID:
        return Html("".join(parts))
    parts.extend(_children(children))
    parts.append(f"</{tag}>")
    return Html("".join(parts))


def join(parts: Iterable[object], separator: str = "") -> Html:
    """Concatenate fragments (escaping any plain strings among them)."""
    return Html(esc(separator).join(_children(parts)))


_VOID = {"meta", "link", "br", "hr", "img", "input", "col", "wbr"}
