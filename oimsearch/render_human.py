"""Rich renderer for terminals.

Document text is never interpreted as Rich markup: every piece is a ``rich.text.Text`` whose
highlight spans are styled with ``stylize`` and printed with ``highlight=False``. Matches are
bold + underline (+ red with colour), so they stay visible under ``NO_COLOR``.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

MATCH_STYLE_COLOR = "bold underline red"
MATCH_STYLE_MONO = "bold underline"


def use_color(color: str, stream=None) -> bool:
    """``auto``: stdout is a terminal, ``NO_COLOR`` unset and ``TERM`` is not ``dumb``."""
    stream = stream or sys.stdout
    if color == "never":
        return False
    if color == "always":
        return True
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def make_console(color: bool, stream=None, stderr: bool = False) -> Console:
    return Console(
        file=stream or (sys.stderr if stderr else sys.stdout),
        force_terminal=color,
        no_color=not color,
        color_system="auto" if color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )


def _highlighted(text: str, spans, color: bool, base: str = "") -> Text:
    t = Text(text, style=base)
    style = MATCH_STYLE_COLOR if color else MATCH_STYLE_MONO
    for s, e in spans:
        t.stylize(style, s, e)
    return t


def _fold_newlines(snippet) -> tuple[str, list]:
    """Replace newlines/tabs by spaces (same length, so offsets stay valid)."""
    text = snippet.text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return text, snippet.highlights


INDENT = 11


def _indented(t: Text) -> Padding:
    return Padding(t, (0, 0, 0, INDENT))


def print_results(res, console: Console, color: bool) -> None:
    for h in res.hits:
        head = Text()
        head.append(f"{h.rank:>3}  ", style="dim")
        head.append(f"{h.score:7.2f}  ", style="dim")
        head.append(h.path or h.id, style="magenta" if color else "")
        if h.path and h.id != h.path:
            head.append(f"  [{h.id}]", style="dim")
        extra = " · ".join(x for x in (h.date, h.place) if x)
        if extra:
            head.append(f"  {extra}", style="dim")
        console.print(head)
        title_snip = next((s for s in h.snippets if s.field == "title"), None)
        title = h.title or ""
        if title_snip is not None:
            tt = _highlighted(title_snip.text, title_snip.highlights, color, base="bold")
        else:
            tt = Text(title, style="bold")
        console.print(_indented(tt))
        for s in h.snippets:
            if s.field == "title":
                continue
            text, spans = _fold_newlines(s)
            line = Text()
            if s.cut_start:
                line.append("…", style="dim")
            line.append_text(_highlighted(text, spans, color))
            if s.cut_end:
                line.append("…", style="dim")
            console.print(_indented(line))
        console.print()
    footer = Text()
    rel = "" if res.total_relation == "eq" else "at least "
    shown = len(res.hits)
    footer.append(
        f"{rel}{res.total} result{'s' if res.total != 1 else ''}, {shown} shown"
        f" · {res.elapsed_ms:.0f} ms",
        style="dim",
    )
    if res.fuzzy or res.expansions.get("fuzzy"):
        fz = res.expansions.get("fuzzy") or {}
        parts = [f"{w} → {', '.join(v)}" for w, v in fz.items()]
        footer.append(
            "  · typo-tolerant: " + ("; ".join(parts) or "yes"), style="yellow" if color else ""
        )
    if res.expansions.get("acronyms"):
        parts = [f"{w} → {', '.join(v)}" for w, v in res.expansions["acronyms"].items()]
        footer.append("  · also searched: " + "; ".join(parts), style="dim")
    console.print(footer)


def print_no_hits(res, console: Console) -> None:
    msg = Text(f"No result for « {res.query} »")
    console.print(msg)
    if res.suggestion:
        console.print(Text(f"Did you mean: {res.suggestion}"))


def print_document(doc, console: Console, color: bool) -> None:
    console.print(Text(doc.title or "", style="bold"))
    meta = [x for x in (doc.id, doc.date, doc.place, doc.url) if x]
    console.print(Text(" · ".join(meta), style="dim"))
    console.print()
    console.print(Text(doc.body or ""))


def print_stats(st, console: Console, show_acronyms: bool) -> None:
    import datetime as dt

    def when(ts: float) -> str:
        if not ts:
            return "?"
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")

    rows = [
        ("index", st.path),
        ("documents", f"{st.documents:,}"),
        ("source files", f"{st.files:,}"),
        ("terms (title+body)", f"{st.terms:,}"),
        ("size on disk", f"{st.size_bytes / 1e6:.1f} MB"),
        ("segments", str(st.segments)),
        (
            "distinct titles",
            "?" if st.title_ratio is None else f"{st.title_ratio:.0%} of the documents",
        ),
        ("analyzer", st.analyzer),
        ("format", str(st.format)),
        ("built by", f"oimsearch {st.oimsearch}"),
        ("created", when(st.created)),
        ("last update", when(st.updated)),
        ("roots", ", ".join(st.roots) or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        line = Text(f"{k:<{width}}  ", style="dim")
        line.append(v)
        console.print(line)
    if st.top_places:
        console.print(Text("top places", style="dim"))
        for place, n in st.top_places:
            console.print(Text(f"  {n:>6}  {place}"))
    if show_acronyms:
        console.print(Text(f"acronyms ({len(st.acronyms)})", style="dim"))
        for acr, forms in sorted(st.acronyms.items()):
            console.print(Text(f"  {acr:<10} {' | '.join(forms)}"))
