"""One-line descriptions of config fields, read from the trailing comment of each field.

The configs (``TrainConfig``, the agent configs, ``OPERConfig``) document every field with a
comment on its line (``lr: float = 3e-4  # learning rate ...``).  Those comments are the one
source of truth: ``--help`` reads them from the class's source with ``tokenize`` instead of
repeating them in a second table that could drift.  A field without a comment gets
``NO_HELP`` (``tests/test_qc_flags.py`` checks that no shipped config has one).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import tokenize

NO_HELP = "(no description)"


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """``{field name: its trailing comment}`` for the fields of dataclass ``cls``.

    A field line is ``name: annotation = default  # comment``; the comment may continue on the
    next line(s) when they hold only a comment and the field's statement is still open (a
    multi-line default).  Fields declared without a comment map to ``NO_HELP``."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (frozen app, REPL class)
        return dict.fromkeys(names, NO_HELP)
    out: dict[str, str] = {}
    body_col: int | None = None  # column of the class body's statements
    current: str | None = None  # the field whose statement is being read
    at_line_start = True
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NEWLINE:  # the end of a statement (not of a wrapped line)
            current, at_line_start = None, True
        elif tok.type == tokenize.NL:
            at_line_start = True
        elif tok.type == tokenize.INDENT:
            body_col = len(tok.string) if body_col is None else body_col
        elif tok.type == tokenize.COMMENT:
            if current is not None and current not in out:
                out[current] = tok.string.lstrip("#").strip()
        elif tok.type != tokenize.DEDENT:
            if at_line_start and current is None and tok.start[1] == body_col \
                    and tok.type == tokenize.NAME and tok.string in names:
                current = tok.string
            at_line_start = False
    return {n: out.get(n) or NO_HELP for n in names}
