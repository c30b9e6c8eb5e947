"""Command-line interface: parse arguments, call the library, render.

Only ``typer`` is imported at module level (ruff TID253 enforces it): Whoosh, Rich and
unidecode are imported inside the commands that need them, so ``--help`` and ``--json``
queries start fast and the JSON path never imports Rich.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from enum import Enum
from typing import Optional

# Plain (non-Rich) help: Rich-rendered help costs ~200 ms at every `--help`.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from oimsearch import __version__  # noqa: E402

EXIT_HELP = """Exit status: 0 success (query: at least one hit), 1 query found nothing,
2 error (bad argument, missing or locked index, bad input during `index`), 130 interrupted."""

app = typer.Typer(
    name="oimsearch",
    help=(
        "French full-text search for archives of press releases and news.\n\n"
        "Build an index from folders of articles (.txt, .md, .html, .jsonl, .jsonl.gz), "
        "then run ranked queries with highlighted snippets. The index is --index DIR, "
        "else $OIMSEARCH_INDEX, else ./index."
    ),
    epilog=EXIT_HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"debug": False}


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def _err(msg: str) -> None:
    sys.stderr.write(f"oimsearch: error: {msg}\n")
    sys.stderr.flush()


def _warn(msg: str) -> None:
    sys.stderr.write(f"oimsearch: {msg}\n")


def _text_arg(value: str) -> str:
    """A text argument as valid Unicode: bytes of the command line that were not UTF-8
    (surrogate escapes) and lone surrogates become U+FFFD, so that they can be printed,
    matched against ids and written as JSON."""
    value = re.sub("[\ud800-\udc7f\udd00-\udfff]", "\ufffd", value)  # not from bytes
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _quiet_pipe() -> None:
    """stdout was closed (``| head``): leave quietly, without a second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def handle_errors(func):
    """Turn library errors into one line on stderr and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from oimsearch.errors import OimsearchError

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except OimsearchError as e:
            if _STATE["debug"]:
                import traceback

                traceback.print_exc()
            _err(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _quiet_pipe()
            raise typer.Exit(0) from None
        except Exception as e:  # an internal error: still one line, trace with --debug
            if _STATE["debug"]:
                import traceback

                traceback.print_exc()
            _err(
                f"internal error: {type(e).__name__}: {e} "
                "(run with --debug for a traceback, and please report it)"
            )
            raise typer.Exit(2) from None

    return wrapper


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"oimsearch {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version_cb, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show a Python traceback on errors (for bug reports)."
    ),
) -> None:
    _STATE["debug"] = debug


IndexOpt = typer.Option(
    None,
    "--index",
    "-i",
    help="Index directory (default: $OIMSEARCH_INDEX, else ./index).",
    show_default=False,
)


# ---------------------------------------------------------------------------------------
# index


@app.command("index")
@handle_errors
def index_cmd(
    paths: Optional[list[str]] = typer.Argument(  # noqa: UP045 (typer needs Optional here)
        None,
        help="Folders (walked recursively) and files to index. Without PATH: update the "
        "folders indexed before.",
        show_default=False,
    ),
    index: Optional[str] = IndexOpt,  # noqa: UP045
    rebuild: bool = typer.Option(
        False,
        "--rebuild",
        help="Start a new index from scratch (the old one stays until it is done).",
    ),
    procs: Optional[int] = typer.Option(  # noqa: UP045
        None,
        "--procs",
        min=1,
        max=8,
        help="Writer processes (default: 2 for large inputs, else 1).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
) -> None:
    """Build or update the index from folders of articles.

    Formats: .txt (first line title; a site menu repeated across a folder is detected and
    dropped), .md (front matter, first heading), .html/.htm (main text extracted), .jsonl and
    .jsonl.gz (one {"id","title","body",...} a line). A second run re-reads only changed
    files and removes documents of deleted files. Files listed in a .oimsearchignore
    (glob per line) are skipped. Bad files are reported on stderr and counted; the rest is
    indexed. Exit 0, or 2 if any input failed or the index could not be written.
    """
    from oimsearch.indexer import index_paths, resolve_index_dir

    show_progress = sys.stderr.isatty() and not quiet and not json_out
    progress_cb = None
    bar = None
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from oimsearch.render_human import make_console

        bar = Progress(
            TextColumn("indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=make_console(True, stderr=True),
            transient=True,
        )
        task = bar.add_task("", total=None)

        def progress_cb(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=name[-50:])

        bar.start()

    def on_problem(p) -> None:
        if quiet and p.severity != "failed":
            return
        line = f"{p.path}: {p.reason}"
        if bar is not None:
            bar.console.print(f"oimsearch: {p.severity}: {line}", markup=False, highlight=False)
        else:
            _warn(f"{p.severity}: {line}")

    try:
        report = index_paths(
            paths or [],
            index_dir=index,
            rebuild=rebuild,
            procs=procs,
            progress=progress_cb,
            on_problem=on_problem,
        )
    finally:
        if bar is not None:
            bar.stop()
    if json_out:
        from oimsearch.render import write_json_obj

        write_json_obj(report.to_dict(), sys.stdout)
    elif not quiet:
        ix = resolve_index_dir(index)
        ix_opt = "" if index is None else f" --index {ix}"
        sys.stderr.write(
            f"{report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged, {report.skipped} skipped, {report.failed} failed"
            f" · {report.documents} documents in {ix}"
            f" · {report.seconds:.1f} s, {report.docs_per_s:.0f} docs/s\n"
        )
        if report.documents:
            sys.stderr.write(f'next: oimsearch query "your words"{ix_opt}\n')
    raise typer.Exit(2 if report.failed else 0)


# ---------------------------------------------------------------------------------------
# query


def _settings(no_fuzzy: bool, operator: str | None):
    from oimsearch.ranking import RankingSettings

    kw = {}
    if no_fuzzy:
        kw["fuzzy"] = False
    if operator:
        kw["operator"] = operator
    return RankingSettings(**kw)


@app.command("query")
@handle_errors
def query_cmd(
    text: str = typer.Argument(
        ...,
        help='The query: words, "a phrase", AND / OR / NOT, -word, prefix*, title:word, word~.',
        show_default=False,
    ),
    index: Optional[str] = IndexOpt,  # noqa: UP045
    limit: int = typer.Option(10, "--limit", "-n", min=0, help="Number of hits to show."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many hits (paging)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object (docs/json-output.md)."),
    jsonl_out: bool = typer.Option(
        False, "--jsonl", help="JSON Lines: begin / hit / end / summary messages."
    ),
    color: Color = typer.Option(
        Color.auto, "--color", help="Colour: auto (terminal and no NO_COLOR), always, never."
    ),
    pretty: bool = typer.Option(
        False, "--pretty", help="Terminal layout even when piped (e.g. | less -R)."
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Print the parsed query (on stderr) before the results."
    ),
    place: Optional[str] = typer.Option(  # noqa: UP045
        None, "--place", help="Only documents whose dateline place is this (accents ignored)."
    ),
    since: Optional[str] = typer.Option(  # noqa: UP045
        None, "--since", help="Only documents dated on or after YYYY[-MM[-DD]]."
    ),
    until: Optional[str] = typer.Option(  # noqa: UP045
        None, "--until", help="Only documents dated on or before YYYY[-MM[-DD]]."
    ),
    path: Optional[str] = typer.Option(  # noqa: UP045
        None, "--path", help="Only documents whose path matches this glob (e.g. 'asile/*')."
    ),
    no_fuzzy: bool = typer.Option(
        False, "--no-fuzzy", help="No typo-tolerant expansion of words absent from the index."
    ),
    operator: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--operator",
        help="Default operator between words: 'or' (all-words documents first, then those "
        "missing only common words; default) or 'and' (every word required).",
    ),
) -> None:
    """Ranked search with highlighted snippets.

    On a terminal: rank, score, path, title and up to three snippets with the matched words
    highlighted, then the total and the time. Piped: one tab-separated line per hit (rank,
    score, id, title). Accents, case and elisions (l'OIM, l’OIM) are ignored; words typed
    with accents rank exact matches first. Interrogatives (quand, pourquoi, combien, quoi,
    lequel) are left out of a question that has other words unless quoted ("quand").
    Exit 0 with hits, 1 with none, 2 on error.
    """
    import time

    from oimsearch.errors import UsageError
    from oimsearch.searcher import open_searcher

    t0 = time.perf_counter()
    text = _text_arg(text)
    if json_out and jsonl_out:
        raise UsageError("--json and --jsonl are exclusive", hint="choose one")
    if operator and operator not in ("or", "and"):
        raise UsageError(f"--operator {operator!r} is not 'or' or 'and'")
    with open_searcher(index, settings=_settings(no_fuzzy, operator)) as s:
        res = s.search(
            text, limit=limit, offset=offset, place=place, since=since, until=until, path=path
        )
    if explain:
        sys.stderr.write(f"parsed query: {res.parsed_query}\n")
    out = sys.stdout
    if json_out:
        from oimsearch.render import write_json

        write_json(res, out)
    elif jsonl_out:
        from oimsearch.render import write_jsonl

        write_jsonl(res, out, run_ms=(time.perf_counter() - t0) * 1000)
    elif pretty or out.isatty():
        from oimsearch.render_human import make_console, print_no_hits, print_results, use_color

        col = use_color(color.value)
        console = make_console(col)
        if res.hits:
            print_results(res, console, col)
        else:
            print_no_hits(res, make_console(False, stream=sys.stderr))
    else:
        from oimsearch.render import write_plain

        write_plain(res, out)
        if not res.hits:
            sys.stderr.write(f"No result for « {text} »\n")
            if res.suggestion:
                sys.stderr.write(f"Did you mean: {res.suggestion}\n")
    out.flush()
    raise typer.Exit(0 if res.hits else 1)


# ---------------------------------------------------------------------------------------
# show / similar / stats / analyze


@app.command("show")
@handle_errors
def show_cmd(
    doc_id: str = typer.Argument(..., metavar="ID", help="Document id (as shown by query)."),
    index: Optional[str] = IndexOpt,  # noqa: UP045
    json_out: bool = typer.Option(False, "--json", help="Print the document as JSON."),
    color: Color = typer.Option(Color.auto, "--color", help="auto, always or never."),
) -> None:
    """Print one whole document (title, id, date, place, url, body)."""
    from oimsearch.searcher import open_searcher

    doc_id = _text_arg(doc_id)
    with open_searcher(index) as s:
        doc = s.document(doc_id)
    if json_out:
        from oimsearch.render import write_json_obj

        write_json_obj(doc.to_dict(), sys.stdout)
    else:
        from oimsearch.render_human import make_console, print_document, use_color

        col = use_color(color.value)
        print_document(doc, make_console(col), col)


@app.command("similar")
@handle_errors
def similar_cmd(
    doc_id: str = typer.Argument(..., metavar="ID", help="Document id (as shown by query)."),
    index: Optional[str] = IndexOpt,  # noqa: UP045
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="Number of documents."),
    json_out: bool = typer.Option(False, "--json", help="JSON, same shape as query --json."),
    color: Color = typer.Option(Color.auto, "--color", help="auto, always or never."),
) -> None:
    """Documents most like ID (more like this: its most distinctive terms)."""
    from oimsearch.searcher import open_searcher

    doc_id = _text_arg(doc_id)
    with open_searcher(index) as s:
        res = s.similar(doc_id, limit=limit)
    if json_out:
        from oimsearch.render import write_json

        write_json(res, sys.stdout)
    elif sys.stdout.isatty():
        from oimsearch.render_human import make_console, print_results, use_color

        col = use_color(color.value)
        print_results(res, make_console(col), col)
    else:
        from oimsearch.render import write_plain

        write_plain(res, sys.stdout)
    raise typer.Exit(0 if res.hits else 1)


@app.command("stats")
@handle_errors
def stats_cmd(
    index: Optional[str] = IndexOpt,  # noqa: UP045
    json_out: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    acronyms: bool = typer.Option(
        False, "--acronyms", help="Also list the acronyms learnt from the documents."
    ),
) -> None:
    """Index statistics: documents, terms, size, analyzer, last update, top places."""
    from oimsearch.searcher import open_searcher

    with open_searcher(index) as s:
        st = s.stats()
    if json_out:
        from oimsearch.render import write_json_obj

        d = st.to_dict()
        if not acronyms:
            d.pop("acronyms", None)
        write_json_obj(d, sys.stdout)
    else:
        from oimsearch.render_human import make_console, print_stats

        print_stats(st, make_console(False), acronyms)


@app.command("analyze")
@handle_errors
def analyze_cmd(
    text: str = typer.Argument(..., help="Text to analyse.", show_default=False),
    exact: bool = typer.Option(
        False, "--exact", help="Use the exact chain (no folding, stop words or stemming)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per token, in a list."),
) -> None:
    """Show how the French analyzer turns TEXT into index terms, token by token.

    Columns: position, start-end (offsets in TEXT), the surface as typed, the emitted term,
    and what happened (elided, folded, stopped, override, stemmed). The tool to understand
    why a query matches or not.
    """
    from oimsearch.analysis import ANALYZER_VERSION, explain

    rows = explain(_text_arg(text), exact=exact)
    if json_out:
        from oimsearch.render import write_json_obj

        write_json_obj(
            {
                "analyzer": ANALYZER_VERSION + ("-exact" if exact else ""),
                "tokens": [
                    {
                        "position": r.position,
                        "start": r.start,
                        "end": r.end,
                        "surface": r.surface,
                        "term": r.term,
                        "steps": r.steps,
                    }
                    for r in rows
                ],
            },
            sys.stdout,
        )
        return
    out = sys.stdout
    out.write("pos\tstart-end\tsurface\tterm\tsteps\n")
    for r in rows:
        pos = "-" if r.position is None else str(r.position)
        term = "-" if r.term is None else r.term
        out.write(f"{pos}\t{r.start}-{r.end}\t{r.surface}\t{term}\t{', '.join(r.steps)}\n")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        sys.exit(130)
    except BrokenPipeError:
        _quiet_pipe()
        sys.exit(0)
    finally:
        # The process ends here: exempt every object from the interpreter's final garbage
        # collections (~15-20 ms of a query once Whoosh is loaded, ~8 ms of --help). Files
        # and the index are closed and atexit handlers run as before; unreachable cycles
        # are left to the OS, which frees the whole process anyway.
        import gc

        gc.freeze()
