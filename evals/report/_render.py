"""Rendering the view model: Jinja2 templates with autoescape, and the page's own CSS and script.

The templates (``templates/*.html.j2``) lay the page objects of ``_views`` out and format
nothing. Autoescape is on for every template, so every text — from an agent, a dataset, a
judge or a contract — reaches the page escaped; a missing attribute is an error, not an empty
string (``StrictUndefined``). The only markup that is not escaped is the stylesheet and the
filter script (``static/``), files of this package inlined into each page so it works alone
from ``file://``. Each page's Content-Security-Policy admits exactly these two blocks, by
hash, and nothing from the network (``default-src 'none'``): an injected tag that escaped
escaping still could not run, and the browser test would see the violation as a console error.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from evals.metrics import fmt_time
from evals.report._views import AgentPage, IndexPage, RunPage

__all__ = ["CSP", "CSS", "SCRIPT", "render"]

_STATIC = files("evals.report") / "static"

CSS = (_STATIC / "report.css").read_text(encoding="utf-8")
"""The stylesheet every page inlines."""
SCRIPT = (_STATIC / "filters.js").read_text(encoding="utf-8")
"""The run pages' filter script."""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSP = (
    "default-src 'none'; "
    f"style-src {_hash(CSS)}; "
    f"script-src {_hash(SCRIPT)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
"""Only the inline stylesheet and script above, by hash; nothing from anywhere else."""


@cache
def environment() -> Environment:
    """The templates of this package, escaping everything, failing on any undefined name."""
    return Environment(
        loader=PackageLoader("evals.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(page: IndexPage | AgentPage | RunPage, generated: datetime) -> str:
    """One page as an HTML document."""
    template = environment().get_template(page.template)
    return template.render(
        page=page,
        generated=fmt_time(generated),
        csp=CSP,
        # Package files, not text from anyone: the one place markup is not escaped.
        css=Markup(CSS),
        script=Markup(SCRIPT),
    )
