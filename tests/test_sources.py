"""Tests for oimsearch.sources: discovery, decoding, per-format parsing and bad input."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oimsearch.errors import SourceError
from oimsearch.sources import (
    FAILED,
    SKIPPED,
    WARNING,
    Problem,
    SourceDoc,
    SourceFile,
    _dateline,
    _find_date,
    chrome_lines,
    content_hash,
    decode_text,
    discover,
    iter_jsonl,
    parse,
    problem_from_oserror,
    read_bytes,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
SITE = FIXTURES / "site"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- helpers


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def only_file(path: Path) -> SourceFile:
    found = discover([path])
    assert len(found.files) == 1, found
    return found.files[0]


def parse_path(path: Path, chrome: frozenset[str] = frozenset()):
    f = only_file(path)
    return parse(f, read_bytes(f), chrome)


def one_doc(path: Path, chrome: frozenset[str] = frozenset()) -> SourceDoc:
    docs, problems = parse_path(path, chrome)
    assert [p for p in problems if p.severity != WARNING] == []
    assert len(docs) == 1
    return docs[0]


def reasons(problems: list[Problem]) -> list[tuple[str, str, str]]:
    return [(p.path, p.severity, p.reason) for p in problems]


ARTICLE = (
    "Les demandeurs d'asile attendent un hébergement\n"
    "\n"
    "Lyon - Plus de trois cents personnes dorment encore dans des gymnases.\n"
    "\n"
    "La préfecture promet des places supplémentaires avant l'hiver.\n"
)


# --------------------------------------------------------------------------- discovery


def test_discover_walks_sorted_and_skips_hidden_unknown_and_index_dirs(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", ARTICLE)
    write(tmp_path / "a" / "z.md", "# Titre\n\ncorps")
    write(tmp_path / "a" / "page.HTM", "<html></html>")
    write(tmp_path / "c.jsonl.gz", gzip.compress(b""))
    write(tmp_path / "notes.docx", b"PK")
    write(tmp_path / ".git" / "x.txt", "caché")
    write(tmp_path / ".cache.txt", "caché")
    write(tmp_path / "idx" / "oimsearch.json", "{}")
    write(tmp_path / "idx" / "segment.txt", "pas une source")
    found = discover([tmp_path])
    assert [(f.rel, f.kind) for f in found.files] == [
        ("a/page.HTM", "html"),
        ("a/z.md", "md"),
        ("b.txt", "txt"),
        ("c.jsonl.gz", "jsonl"),
    ]
    assert found.problems == []
    f = found.files[2]
    assert f.root == tmp_path and f.path == tmp_path / "b.txt" and f.path.is_absolute()
    assert f.size == len(ARTICLE.encode()) and f.mtime_ns == (tmp_path / "b.txt").stat().st_mtime_ns


def test_discover_file_given_directly(tmp_path: Path) -> None:
    txt = write(tmp_path / "sub" / "a.txt", ARTICLE)
    other = write(tmp_path / "rapport.pdf", b"%PDF-1.4")
    found = discover([txt, str(other)])
    assert [(f.root, f.rel) for f in found.files] == [(tmp_path / "sub", "a.txt")]
    assert reasons(found.problems) == [
        (
            str(other),
            SKIPPED,
            "unsupported file type, expected .txt .md .html .jsonl .jsonl.gz",
        )
    ]


def test_discover_missing_path_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        discover([tmp_path, tmp_path / "absent"])
    assert "path not found" in info.value.message and "absent" in info.value.message
    assert info.value.hint


def test_discover_symlink_loop_is_reported_not_followed(tmp_path: Path) -> None:
    write(tmp_path / "a" / "doc.txt", ARTICLE)
    os.symlink(tmp_path, tmp_path / "a" / "retour")
    os.symlink("boucle.txt", tmp_path / "boucle.txt")
    found = discover([tmp_path])
    assert [f.rel for f in found.files] == ["a/doc.txt"]
    assert reasons(found.problems) == [
        ("a/retour", SKIPPED, "symbolic link loop"),
        ("boucle.txt", SKIPPED, "symbolic link loop"),
    ]


def test_discover_follows_file_symlinks_and_reports_broken_ones(tmp_path: Path) -> None:
    target = write(tmp_path / "ailleurs" / "cible.txt", ARTICLE)
    write(tmp_path / "corpus" / "a.txt", "Titre\n\ncorps")
    os.symlink(target, tmp_path / "corpus" / "lien.txt")
    os.symlink(tmp_path / "nulle-part.txt", tmp_path / "corpus" / "casse.txt")
    os.symlink(tmp_path / "nulle-part.bin", tmp_path / "corpus" / "casse.bin")
    found = discover([tmp_path / "corpus"])
    assert [f.rel for f in found.files] == ["a.txt", "lien.txt"]
    assert read_bytes(found.files[1]) == ARTICLE.encode()
    assert reasons(found.problems) == [("casse.txt", FAILED, "broken symbolic link")]


def test_discover_same_file_twice_is_kept_once(tmp_path: Path) -> None:
    doc = write(tmp_path / "a.txt", ARTICLE)
    found = discover([tmp_path, doc])
    assert [f.rel for f in found.files] == ["a.txt"]
    assert reasons(found.problems) == [(str(doc), SKIPPED, "same file as a.txt")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_discover_special_files_are_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "tube.txt")
    os.mkfifo(tmp_path / "tube.bin")
    found = discover([tmp_path, tmp_path / "tube.txt"])
    assert found.files == []
    assert reasons(found.problems) == [
        ("tube.txt", SKIPPED, "not a regular file"),
        (str(tmp_path / "tube.txt"), SKIPPED, "not a regular file"),
    ]


def test_heavy_modules_are_imported_lazily() -> None:
    code = (
        "import sys, oimsearch.sources; "
        "print(sorted(m for m in ('trafilatura', 'charset_normalizer', 'lxml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_discover_invalid_utf8_file_name(tmp_path: Path) -> None:
    raw_name = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(raw_name, "wb") as fh:
        fh.write(ARTICLE.encode())
    found = discover([tmp_path])
    [f] = found.files
    assert f.rel == "caf\ufffd.txt"
    assert reasons(found.problems) == [("caf\ufffd.txt", WARNING, "file name is not valid UTF-8")]
    assert one_doc(f.path).id == "caf\ufffd.txt"
    json.dumps(f.rel).encode("utf-8")  # safe to print and store


@pytest.mark.skipif(IS_ROOT, reason="root can read a chmod 000 file")
def test_unreadable_file_and_folder(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", ARTICLE)
    write(tmp_path / "ferme" / "x.txt", ARTICLE)
    secret.chmod(0)
    (tmp_path / "ferme").chmod(0)
    try:
        found = discover([tmp_path])
        assert reasons(found.problems) == [("ferme", FAILED, "permission denied")]
        [f] = found.files
        with pytest.raises(OSError) as info:
            read_bytes(f)
        assert problem_from_oserror(f, info.value) == Problem(
            "secret.txt", "permission denied", FAILED
        )
    finally:
        secret.chmod(0o644)
        (tmp_path / "ferme").chmod(0o755)


def test_problem_from_oserror_reasons(tmp_path: Path) -> None:
    f = only_file(write(tmp_path / "a.txt", ARTICLE))
    denied = PermissionError(errno.EACCES, "Permission denied")
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert problem_from_oserror(f, denied) == Problem("a.txt", "permission denied", FAILED)
    assert problem_from_oserror(f, gone).reason == "file disappeared"
    f.path.unlink()
    with pytest.raises(OSError):
        read_bytes(f)


def test_content_hash() -> None:
    assert content_hash(b"abc") == content_hash(b"abc")
    assert content_hash(b"abc") != content_hash(b"abd")
    assert len(content_hash(b"")) == 32


# --------------------------------------------------------------------------- decoding

FRENCH = "Réfugiés et déplacés : l'œuvre « humanitaire » coûte 10 € à Genève, où l'été est chaud."


@pytest.mark.parametrize(
    ("data", "warning"),
    [
        (FRENCH.encode("utf-8"), None),
        (b"\xef\xbb\xbf" + FRENCH.encode("utf-8"), None),
        (FRENCH.encode("utf-16"), None),
        (b"\xfe\xff" + FRENCH.encode("utf-16-be"), None),
        (FRENCH.encode("cp1252"), "decoded as cp1252"),
        (FRENCH.replace("œ", "oe").replace("€", "EUR").encode("latin-1"), "decoded as cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le-bom", "utf16-be-bom", "cp1252", "latin1"],
)
def test_decode_encodings(tmp_path: Path, data: bytes, warning: str | None) -> None:
    f = only_file(write(tmp_path / "a.txt", data))
    text, problems = decode_text(f, data)
    expected = FRENCH if b"EUR" not in data else FRENCH.replace("œ", "oe").replace("€", "EUR")
    assert text == expected
    assert reasons(problems) == ([("a.txt", WARNING, warning)] if warning else [])


def test_decode_line_ends_and_nfc(tmp_path: Path) -> None:
    decomposed = "Re\u0301fugie\u0301s"
    data = f"Titre\r\nligne {decomposed}\rfin\r\n".encode()
    f = only_file(write(tmp_path / "a.txt", data))
    assert decode_text(f, data) == ("Titre\nligne Réfugiés\nfin\n", [])


def test_decode_mostly_utf8_with_a_stray_byte(tmp_path: Path) -> None:
    data = FRENCH.encode() + b" caf\xe9"
    f = only_file(write(tmp_path / "a.txt", data))
    text, problems = decode_text(f, data)
    assert text == FRENCH + " caf\ufffd"
    assert reasons(problems) == [("a.txt", WARNING, "invalid UTF-8 bytes replaced")]


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"Titre\n" + b"texte " * 100 + b"\x00\x01\x02",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        FRENCH.encode("utf-16-le"),  # UTF-16 without BOM: NUL bytes
    ],
    ids=["png", "nul-bytes", "pdf", "utf16-no-bom"],
)
def test_binary_files_fail(tmp_path: Path, data: bytes) -> None:
    f = only_file(write(tmp_path / "a.txt", data))
    assert decode_text(f, data) == (None, [Problem("a.txt", "binary file", FAILED)])
    assert parse(f, data) == ([], [Problem("a.txt", "binary file", FAILED)])


def test_undecodable_bytes_fail(tmp_path: Path) -> None:
    data = bytes(range(1, 256)) * 20
    f = only_file(write(tmp_path / "a.txt", data))
    assert decode_text(f, data) == (None, [Problem("a.txt", "undecodable", FAILED)])


def test_non_western_legacy_encoding_is_detected_not_read_as_cp1252(tmp_path: Path) -> None:
    text = "Беженцы и мигранты прибывают в город."
    f = only_file(write(tmp_path / "a.txt", text.encode("cp1251")))
    assert decode_text(f, text.encode("cp1251")) == (
        text,
        [Problem("a.txt", "decoded as cp1251", WARNING)],
    )


def test_nul_in_utf16_text_is_binary(tmp_path: Path) -> None:
    data = "abc\x00def".encode("utf-16")
    f = only_file(write(tmp_path / "a.txt", data))
    assert decode_text(f, data) == (None, [Problem("a.txt", "binary file", FAILED)])


@pytest.mark.parametrize("name", ["vide.txt", "vide.md", "vide.html"])
@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  \n", b"\xef\xbb\xbf\n"])
def test_empty_and_whitespace_only_files_are_skipped(
    tmp_path: Path, name: str, content: bytes
) -> None:
    docs, problems = parse_path(write(tmp_path / name, content))
    assert docs == []
    assert reasons(problems) == [(name, SKIPPED, "empty file")]


# --------------------------------------------------------------------------- txt


def test_txt_title_body_place_and_paragraphs(tmp_path: Path) -> None:
    doc = one_doc(write(tmp_path / "rapports" / "lyon.txt", "\n\n" + ARTICLE + "\n\n\n"))
    assert doc.id == "lyon.txt"
    assert doc.title == "Les demandeurs d'asile attendent un hébergement"
    assert doc.body == (
        "Lyon - Plus de trois cents personnes dorment encore dans des gymnases.\n"
        "\n"
        "La préfecture promet des places supplémentaires avant l'hiver."
    )
    assert (doc.place, doc.date, doc.url, doc.meta) == ("Lyon", None, None, {})


def test_txt_id_is_path_relative_to_root(tmp_path: Path) -> None:
    write(tmp_path / "2023" / "mars" / "a.txt", ARTICLE)
    [f] = discover([tmp_path]).files
    assert parse(f, read_bytes(f))[0][0].id == "2023/mars/a.txt"


def test_txt_legacy_encoding_is_indexed_with_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "ancien.txt", ARTICLE.encode("cp1252"))
    docs, problems = parse_path(path)
    assert docs[0].title == "Les demandeurs d'asile attendent un hébergement"
    assert reasons(problems) == [("ancien.txt", WARNING, "decoded as cp1252")]


def test_txt_single_line_and_long_first_line(tmp_path: Path) -> None:
    assert one_doc(write(tmp_path / "a.txt", "Seulement un titre\n")).body == ""
    para = "Le rapport " + "décrit la situation des personnes déplacées " * 20
    doc = one_doc(write(tmp_path / "b.txt", para + "\n\nSuite."))
    assert len(doc.title) <= 120 and doc.title.endswith("…")
    assert doc.body.startswith(para.strip())  # a paragraph is not lost as a title


def test_txt_crlf_file(tmp_path: Path) -> None:
    doc = one_doc(write(tmp_path / "a.txt", ARTICLE.replace("\n", "\r\n").encode("utf-8-sig")))
    assert doc.title == "Les demandeurs d'asile attendent un hébergement"
    assert "\r" not in doc.body and doc.place == "Lyon"


@pytest.mark.parametrize(
    ("first_line", "place", "date"),
    [
        ("Kinshasa - Depuis le lundi 16 avril, une formation a lieu.", "Kinshasa", None),
        (
            "République Centre-Africaine – L'équipe a organisé deux ateliers.",
            "République Centre-Africaine",
            None,
        ),
        ("Genève, 12 mars 2024 — Les délégations se sont réunies.", "Genève", "2024-03-12"),
        ("Côte d'Ivoire - Une mission d'évaluation a eu lieu.", "Côte d'Ivoire", None),
        ("La Paz - Les autorités ont ouvert un centre.", "La Paz", None),
        (
            "République démocratique du Congo - Un atelier s'est tenu.",
            "République démocratique du Congo",
            None,
        ),
        ("GENÈVE (OMH) – Un rapport est paru le 1er juin 2022.", "GENÈVE", "2022-06-01"),
        ("Dakar, le 03/02/2021 - Les inscriptions sont ouvertes.", "Dakar", "2021-02-03"),
        ("Bamako, 2019-11-05 : ouverture d'un guichet unique.", "Bamako", "2019-11-05"),
        ("Depuis lundi - et jusqu'à vendredi - les bureaux sont fermés.", None, None),
        ("Le ministre - qui était absent - a été remplacé.", None, None),
        ("Depuis lundi, les bureaux sont fermés.", None, None),
        ("Selon le rapport. Paris - Les chiffres montent.", None, None),
        ("les migrants - arrivés hier - sont hébergés.", None, None),
        ("Communiqué de presse – 14 mai 2023", None, "2023-05-14"),
        ("Un texte sans tiret, publié le 30 février 2020 ou le 2 mai 2020.", None, "2020-05-02"),
    ],
)
def test_dateline(first_line: str, place: str | None, date: str | None) -> None:
    assert _dateline(first_line + "\n\nSuite du texte.") == (place, date)


def test_date_found_in_first_lines_only() -> None:
    body = "Paris - Début.\n\nDeuxième paragraphe du 4 juillet 2021.\n\nTrois.\n\nLe 5 mai 2001."
    assert _dateline(body) == ("Paris", "2021-07-04")
    assert _dateline("Paris - a\nb\nc\nLe 5 mai 2001.") == ("Paris", None)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-12", "2024-03-12"),
        ("2024-03-12T10:00:00+01:00", "2024-03-12"),
        ("12/03/2024", "2024-03-12"),
        ("1er Août 2020", "2020-08-01"),
        ("31 decembre 1999", "1999-12-31"),
        ("2024-13-01", None),
        ("mars 2024", None),
        ("12345-01-01", None),
    ],
)
def test_find_date(text: str, iso: str | None) -> None:
    assert _find_date(text) == iso


# --------------------------------------------------------------------------- chrome


def test_chrome_lines_learns_menu_and_parse_drops_it() -> None:
    found = discover([SITE])
    assert len(found.files) == 5 and found.problems == []
    data = {f.rel: read_bytes(f) for f in found.files}
    texts = [decode_text(f, data[f.rel])[0] or "" for f in found.files]
    chrome = chrome_lines(texts)
    menu = (
        "Aller au contenu principal",
        "Gouvernance",
        "- Asile et protection",
        "Espace presse",
        "Faire un don",
        "Rechercher",
    )
    assert set(menu) <= chrome
    docs = {f.rel: parse(f, data[f.rel], chrome)[0][0] for f in found.files}
    assert {rel: (d.title, d.place, d.date) for rel, d in docs.items()} == {
        "agadez-centre-transit.txt": (
            "Un centre de transit ouvre ses portes à Agadez pour les migrants bloqués",
            "Agadez",
            None,
        ),
        "geneve-conference-refugies.txt": (
            "Genève accueille une conférence régionale sur la protection des réfugiés",
            "Genève",
            "2024-03-12",
        ),
        "haiti-abris-inondations.txt": (
            "Les déplacés internes reçoivent des abris d'urgence après les inondations",
            "Port-au-Prince",
            None,
        ),
        "rca-formation-traite.txt": (
            "Formation des agents frontaliers à l'identification des victimes de la traite",
            "République Centre-Africaine",
            None,
        ),
        "tripoli-retour-volontaire.txt": (
            "Retour volontaire : trois cents migrants rentrent chez eux depuis Tripoli",
            None,
            None,
        ),
    }
    for doc in docs.values():
        assert doc.title not in chrome
        lines = {line.strip() for line in doc.body.split("\n")}
        assert not lines & chrome
        for word in ("Gouvernance", "Rechercher", "Nous rejoindre", "Faire un don", "Agenda"):
            assert word not in doc.body
    assert "\n\n" in docs["agadez-centre-transit.txt"].body


def test_chrome_lines_thresholds() -> None:
    menu = "Accueil\nContact\n"
    assert chrome_lines([menu + "a", menu + "b"]) == frozenset()  # fewer than min_docs
    assert chrome_lines([menu + "a", menu + "b", "c"]) == frozenset()  # 2 of 3 < min_docs
    texts = [menu + "x", menu + "y", menu + "z", "Accueil\nw", "v"]
    assert chrome_lines(texts) == {"Accueil", "Contact"}
    assert chrome_lines(texts, share=0.8) == {"Accueil"}
    assert chrome_lines(iter(["  Accueil \n\n"] * 3)) == {"Accueil"}  # stripped, any iterable


def test_file_that_is_only_chrome_is_skipped(tmp_path: Path) -> None:
    chrome = frozenset({"Accueil", "Contact"})
    docs, problems = parse_path(write(tmp_path / "menu.txt", "Accueil\n\nContact\n"), chrome)
    assert docs == []
    assert reasons(problems) == [
        ("menu.txt", SKIPPED, "no text besides the site's repeated navigation")
    ]


# --------------------------------------------------------------------------- md


def test_md_front_matter_and_heading() -> None:
    doc = one_doc(FIXTURES / "article.md")
    assert doc.id == "article.md"
    assert doc.title == "Asile : les délais d'instruction raccourcis"
    assert (doc.date, doc.place, doc.url) == (
        "2024-02-05",
        "Lyon",
        "https://exemple.org/actualites/asile-delais",
    )
    assert doc.meta == {"auteur": "Rédaction", "tags": ["asile", "procédure"]}
    assert doc.body.startswith("Le délai moyen d'instruction")
    assert "# Asile" not in doc.body and "---" not in doc.body
    assert "## Ce qui change\n\n- un entretien" in doc.body


def test_md_heading_without_front_matter() -> None:
    doc = one_doc(FIXTURES / "notes.md")
    assert doc.title == "Migrations climatiques : un rapport alerte sur les îles du Pacifique"
    assert doc.body.startswith("Nouméa - La montée des eaux")
    assert (doc.place, doc.date, doc.meta) == ("Nouméa", None, {})


def test_md_variants(tmp_path: Path) -> None:
    plain = one_doc(write(tmp_path / "a.md", "Premier paragraphe\n\nSuite du texte."))
    assert (plain.title, plain.body) == ("Premier paragraphe", "Suite du texte.")
    later = one_doc(write(tmp_path / "b.md", "Chapeau.\n\n# Le vrai titre #\n\nCorps."))
    assert (later.title, later.body) == ("Le vrai titre", "Chapeau.\n\nCorps.")
    fm = "---\ntitle: Titre du front matter\nliste:\n  - un\n  - deux\n---\n"
    with_h1 = one_doc(write(tmp_path / "c.md", fm + "\n# Autre titre\n\nCorps."))
    assert (with_h1.title, with_h1.body) == ("Titre du front matter", "# Autre titre\n\nCorps.")
    assert with_h1.meta == {"liste": ["un", "deux"]}
    only_fm = parse_path(write(tmp_path / "e.md", "---\nauteur: x\n---\n\n"))
    assert reasons(only_fm[1]) == [("e.md", SKIPPED, "empty file")]
    unclosed = one_doc(write(tmp_path / "d.md", "---\ntitle: x\n\nTexte libre."))
    assert unclosed.title == "title: x"


def test_md_bad_front_matter_date_warns(tmp_path: Path) -> None:
    docs, problems = parse_path(write(tmp_path / "a.md", "---\ndate: bientôt\n---\nTitre\n\nCorps"))
    assert docs[0].date is None and docs[0].title == "Titre"
    assert reasons(problems) == [("a.md", WARNING, "unrecognised date 'bientôt'")]


def test_md_chrome_does_not_break_front_matter(tmp_path: Path) -> None:
    texts = [f"---\ntitle: T{i}\nlayout: post\n---\nMenu\n\nCorps {i}" for i in range(4)]
    chrome = chrome_lines(texts)
    assert {"---", "layout: post", "Menu"} <= chrome
    doc = one_doc(write(tmp_path / "a.md", texts[0]), chrome)
    assert (doc.title, doc.body, doc.meta) == ("T0", "Corps 0", {"layout": "post"})


# --------------------------------------------------------------------------- html


def test_html_main_text_title_date_url() -> None:
    doc = one_doc(FIXTURES / "page.html")
    assert doc.id == "page.html"
    assert doc.title.startswith("Traite des personnes : un numéro d'urgence lancé")
    assert doc.body.startswith("Dakar - Un numéro d'appel gratuit")
    assert "wolof" in doc.body
    for nav in ("Accueil", "Thématiques", "Mentions légales"):
        assert nav not in doc.body
    assert (doc.place, doc.date) == ("Dakar", "2023-10-18")
    assert doc.url == "https://exemple.org/actualites/numero-urgence-traite"


def test_html_chrome_lines_removed_from_extracted_text(tmp_path: Path) -> None:
    page = (FIXTURES / "page.html").read_text(encoding="utf-8")
    page = page.replace("</article>", "<p>Partager cet article sur les réseaux</p></article>")
    path = write(tmp_path / "p.html", page)
    assert "Partager cet article" in one_doc(path).body
    doc = one_doc(path, frozenset({"Partager cet article sur les réseaux"}))
    assert "Partager" not in doc.body and doc.body.startswith("Dakar -")


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><title>Sans corps</title></head></html>",
        "<html><head><title>Vide</title></head><body>   </body></html>",
        "<html><body><nav><a href='/'>Accueil</a></nav><script>var x = 1;</script></body></html>",
    ],
)
def test_html_without_main_text(tmp_path: Path, html: str) -> None:
    docs, problems = parse_path(write(tmp_path / "p.html", html))
    assert docs == []
    assert reasons(problems) == [("p.html", SKIPPED, "no main text found")]


def test_html_declared_legacy_charset_is_not_a_warning(tmp_path: Path) -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        "<title>Réfugiés</title></head><body><article><h1>Réfugiés à Calais</h1>"
        "<p>Calais - Les bénévoles distribuent des repas chauds chaque soir près du port, "
        "où des centaines de personnes attendent de traverser la Manche.</p></article>"
        "</body></html>"
    )
    page = page.replace("chaque soir", "chaque soir (l’œuvre coûte 5 €)")
    docs, problems = parse_path(write(tmp_path / "p.html", page.encode("cp1252")))
    assert problems == []
    assert "bénévoles" in docs[0].body and "l’œuvre coûte 5 €" in docs[0].body
    assert docs[0].place == "Calais"


# --------------------------------------------------------------------------- jsonl


def test_jsonl_fixture() -> None:
    docs, problems = parse_path(FIXTURES / "docs.jsonl")
    assert problems == []
    assert [(d.id, d.date, d.place, d.url) for d in docs] == [
        ("cp-2022-001", "2022-09-15", "Bordeaux", "https://exemple.org/cp/2022-001"),
        ("2", "2021-06-03", None, None),
        ("cp-2020-017", "2020-12-18", None, None),
    ]
    assert docs[0].title == "Réinstallation : un premier groupe de réfugiés accueilli"
    assert docs[0].body.endswith(
        "réinstallation.\n\nIls seront logés dans trois communes volontaires."
    )
    assert docs[0].meta == {"langue": "fr"}
    assert docs[1].meta == {"rubrique": ["protection", "enfance"]}
    # No title: the first line of the body, cut at a word boundary.
    assert docs[1].title.startswith("Mineurs non accompagnés : le nombre de places")
    assert len(docs[1].title) <= 120 and docs[1].title.endswith("…")


def _line(**obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


BAD_LINES = [
    _line(id="ok-1", body="Premier document valide."),
    "{ceci n'est pas du JSON",
    "[1, 2, 3]",
    _line(body="sans identifiant"),
    _line(id="sans-corps", title="Titre seul"),
    _line(id="corps-nombre", body=42),
    _line(id=["liste"], body="id non valide"),
    _line(id=True, body="id booléen"),
    _line(id="titre-nombre", body="texte", title=7),
    _line(id="ok-1", body="Doublon."),
    "",
    "   ",
    _line(id=3, body="Dernier document valide.", date="bientôt"),
    _line(id="vide", body="  "),
]


def test_jsonl_bad_lines_are_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.jsonl", "\n".join(BAD_LINES) + "\n")
    docs, problems = parse_path(path)
    assert [d.id for d in docs] == ["ok-1", "3"]
    assert reasons(problems) == [
        (
            "corpus.jsonl:2",
            FAILED,
            "not valid JSON (Expecting property name enclosed in double quotes)",
        ),
        ("corpus.jsonl:3", FAILED, "not a JSON object (got list)"),
        ("corpus.jsonl:4", FAILED, "missing 'id'"),
        ("corpus.jsonl:5", FAILED, "missing 'body'"),
        ("corpus.jsonl:6", FAILED, "'body' is not a string"),
        ("corpus.jsonl:7", FAILED, "'id' is not a string or integer"),
        ("corpus.jsonl:8", FAILED, "'id' is not a string or integer"),
        ("corpus.jsonl:9", FAILED, "'title' is not a string"),
        ("corpus.jsonl:10", FAILED, "duplicate id 'ok-1' (first seen in corpus.jsonl:1)"),
        ("corpus.jsonl:13", WARNING, "unrecognised date 'bientôt'"),
        ("corpus.jsonl:14", SKIPPED, "empty 'body'"),
    ]
    # iter_jsonl streams the same records, in file order.
    streamed = list(iter_jsonl(only_file(path)))
    assert [x for x in streamed if isinstance(x, SourceDoc)] == docs
    assert [x for x in streamed if isinstance(x, Problem)] == problems


def test_jsonl_gz_and_utf8_bom_and_invalid_utf8_line(tmp_path: Path) -> None:
    raw = (
        b"\xef\xbb\xbf"
        + _line(id="a", body="Texte accentué : réfugiés.").encode()
        + b"\n"
        + b'{"id": "b", "body": "caf\xe9"}\n'
        + _line(id="c", body="Troisième.").encode()
    )
    path = write(tmp_path / "docs.jsonl.gz", gzip.compress(raw))
    docs, problems = parse_path(path)
    assert [d.id for d in docs] == ["a", "c"]
    assert docs[0].body == "Texte accentué : réfugiés."
    assert reasons(problems) == [("docs.jsonl.gz:2", FAILED, "not valid UTF-8")]


def test_jsonl_gz_truncated_keeps_lines_read(tmp_path: Path) -> None:
    lines = [
        _line(id=i, body=f"Document numéro {i} sur la migration de travail.") for i in range(2000)
    ]
    packed = gzip.compress("\n".join(lines).encode())
    path = write(tmp_path / "coupe.jsonl.gz", packed[: len(packed) // 2])
    docs, problems = parse_path(path)
    assert 0 < len(docs) < 2000
    assert [d.id for d in docs] == [str(i) for i in range(len(docs))]
    [problem] = problems
    assert problem.path == "coupe.jsonl.gz" and problem.severity == FAILED
    assert problem.reason == f"truncated gzip file after line {len(docs)}"
    assert list(iter_jsonl(only_file(path))) == [*docs, problem]


def test_jsonl_gz_corrupt(tmp_path: Path) -> None:
    packed = bytearray(
        gzip.compress(("\n".join(_line(id=i, body="x" * 50) for i in range(50))).encode())
    )
    packed[20:40] = b"\xff" * 20
    docs, problems = parse_path(write(tmp_path / "abime.jsonl.gz", bytes(packed)))
    assert [p.severity for p in problems] == [FAILED]
    assert problems[0].path == "abime.jsonl.gz" and "gzip" in problems[0].reason


def test_jsonl_gz_name_but_not_gzip(tmp_path: Path) -> None:
    docs, problems = parse_path(write(tmp_path / "a.jsonl.gz", _line(id=1, body="texte")))
    assert [d.id for d in docs] == ["1"]
    assert reasons(problems) == [
        ("a.jsonl.gz", WARNING, "not gzip-compressed, read as plain JSONL")
    ]


def test_jsonl_that_is_not_jsonl_gives_one_problem(tmp_path: Path) -> None:
    pretty = json.dumps([{"id": i, "body": "texte"} for i in range(20)], indent=2)
    docs, problems = parse_path(write(tmp_path / "tableau.jsonl", pretty))
    assert docs == []
    assert reasons(problems) == [
        (
            "tableau.jsonl",
            FAILED,
            "no valid record in the first 10 lines (tableau.jsonl:1: not valid JSON"
            " (Expecting value)), rest not read",
        )
    ]
    queries = "\n".join(_line(qid=f"q{i}", query="asile") for i in range(30))
    docs, problems = parse_path(write(tmp_path / "queries.jsonl", queries))
    assert reasons(problems) == [
        (
            "queries.jsonl",
            FAILED,
            "no valid record in the first 10 lines (queries.jsonl:1: missing 'id'), rest not read",
        )
    ]


def test_jsonl_few_bad_lines_before_a_good_one_are_all_reported(tmp_path: Path) -> None:
    lines = ["pas du json"] * 9 + [_line(id=1, body="texte")]
    docs, problems = parse_path(write(tmp_path / "a.jsonl", "\n".join(lines)))
    assert [d.id for d in docs] == ["1"]
    assert [p.path for p in problems] == [f"a.jsonl:{i}" for i in range(1, 10)]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", gzip.compress(b"")])
def test_jsonl_empty(tmp_path: Path, content: bytes) -> None:
    name = "vide.jsonl.gz" if content.startswith(b"\x1f\x8b") else "vide.jsonl"
    assert parse_path(write(tmp_path / name, content)) == (
        [],
        [Problem(name, "empty file", SKIPPED)],
    )


def test_iter_jsonl_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    f = only_file(write(tmp_path / "a.jsonl", _line(id=1, body="x")))
    f.path.unlink()
    assert list(iter_jsonl(f)) == [Problem("a.jsonl", "file disappeared", FAILED)]


def test_iter_jsonl_streams(tmp_path: Path) -> None:
    lines = "\n".join(_line(id=i, body="Réfugiés " * 20) for i in range(5000))
    path = write(tmp_path / "gros.jsonl.gz", gzip.compress(lines.encode()))
    it = iter_jsonl(only_file(path))
    first = next(it)
    assert isinstance(first, SourceDoc) and first.id == "0"
    assert sum(1 for _ in it) == 4999


# --------------------------------------------------------------------------- robustness


@pytest.mark.slow
def test_large_text_file(tmp_path: Path) -> None:
    paragraph = "Les personnes déplacées reçoivent une aide alimentaire et des abris. " * 10
    text = "Un très long rapport\n\n" + (paragraph + "\n\n") * 72_000
    path = write(tmp_path / "gros.txt", text)
    assert path.stat().st_size > 50_000_000
    doc = one_doc(path)
    assert doc.title == "Un très long rapport" and len(doc.body) > 49_000_000


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=600), kind=st.sampled_from(["txt", "md", "html", "jsonl", "jsonl.gz"])
)
def test_parse_never_raises(tmp_path: Path, data: bytes, kind: str) -> None:
    name = f"x.{kind}"
    path = tmp_path / name
    path.write_bytes(data)
    f = only_file(path)
    docs, problems = parse(f, data)
    assert all(isinstance(d, SourceDoc) for d in docs)
    assert all(p.severity in (FAILED, SKIPPED, WARNING) for p in problems)
    if kind.startswith("jsonl"):
        streamed = list(iter_jsonl(f))
        assert [x for x in streamed if isinstance(x, SourceDoc)] == docs
        assert [x for x in streamed if isinstance(x, Problem)] == problems


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=400))
def test_txt_parse_never_raises_on_any_text(text: str) -> None:
    f = SourceFile(Path("/"), Path("/x.txt"), "x.txt", "txt", 0, 0)
    docs, problems = parse(f, text.encode("utf-8", "surrogatepass"))
    assert len(docs) + len([p for p in problems if p.severity != WARNING]) >= 1


def test_fixture_tree_has_no_problems(tmp_path: Path) -> None:
    copy = tmp_path / "copie"
    shutil.copytree(FIXTURES, copy)
    found = discover([copy])
    assert found.problems == []
    for f in found.files:
        docs, problems = parse(f, read_bytes(f))
        assert docs and problems == [], f.rel
