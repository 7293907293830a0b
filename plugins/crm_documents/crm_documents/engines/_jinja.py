"""What the DOCX and XLSX engines share about Jinja: the environment a template is filled in,
the formatting helpers' names, and how a template's context variables are found."""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes

# The formatting helpers docs/documents.md promises templates (bound to the template's locale by
# the host). A template calls them as functions, ``{{ money(x, "EUR") }}``, or as filters,
# ``{{ x|money("EUR") }}``; either way they are not context variables, so ``inspect`` leaves
# them out of what a template reads.
HELPER_NAMES = frozenset({"money", "date", "datetime", "number", "percent"})

# Characters XML 1.0 forbids (a customer name pasted from somewhere may hold them): removed from
# every string of the context rather than breaking the document.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Word's AutoCorrect turns straight quotes typed in a tag into curly ones.
_CURLY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def clean_string(value: str) -> str:
    return _XML_ILLEGAL.sub("", value)


def straighten_quotes(tag: str) -> str:
    return tag.translate(_CURLY)


def _strict(name: str, helper: Callable[..., Any]) -> Callable[..., Any]:
    """The helper, refusing undefined arguments: a missing value printed alone renders empty,
    but handed to ``money`` it is a mistake worth seeing (RENDER_FAILED), not a blank."""

    @functools.wraps(helper)
    def call(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, jinja2.Undefined):
                raise jinja2.UndefinedError(f"{name}() was given an undefined value ({value._undefined_message})")
        return helper(*args, **kwargs)

    return call


def environment(filters: Mapping[str, Callable[..., Any]], *, autoescape: bool) -> jinja2.Environment:
    """An environment where a missing variable or attribute renders as nothing (a customer
    without a phone number), anything done with one (arithmetic, a helper) fails, and the
    helpers are both filters and functions."""
    env = jinja2.Environment(autoescape=autoescape, undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)
    for name, helper in filters.items():
        wrapped = _strict(name, helper)
        env.filters[name] = wrapped
        env.globals[name] = wrapped
    return env


PARSE_ENV = jinja2.Environment()


def template_line(exc: BaseException) -> int | None:
    """The template line an exception raised while rendering comes from (Jinja rewrites its
    tracebacks so that template frames carry template line numbers)."""
    line = getattr(exc, "lineno", None)
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def loaded_names(tree: nodes.Node) -> Iterator[tuple[str, int]]:
    """Every name the tree reads, with its line."""
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load":
            yield node.name, node.lineno


def describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.message or str(exc)
    if isinstance(exc, jinja2.UndefinedError):
        return f"an undefined value was used: {exc}"
    return f"{type(exc).__name__}: {exc}"
