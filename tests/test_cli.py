"""The command-line interface: exit codes, output modes, JSON contract, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oimsearch.cli import app

runner = CliRunner()
ENV = {"NO_COLOR": "1", "COLUMNS": "100", "OIMSEARCH_INDEX": ""}

TOP_KEYS = {
    "format", "oimsearch", "query", "parsed_query", "index", "offset", "limit", "total",
    "hits", "suggestion", "fuzzy", "expansions", "offset_unit", "elapsed_ms",
}  # fmt: skip
HIT_KEYS = {"rank", "score", "id", "path", "title", "snippets", "matched_terms"}
SNIPPET_KEYS = {"field", "text", "offset", "cut_start", "cut_end", "highlights"}
INDEX_KEYS = {"path", "documents", "analyzer"}
BEGIN_KEYS = {
    "format", "oimsearch", "qid", "query", "parsed_query", "index", "offset", "limit",
    "offset_unit",
}  # fmt: skip
END_KEYS = {"qid", "total", "returned", "suggestion", "fuzzy", "expansions", "elapsed_ms"}
SUMMARY_KEYS = {"queries", "queries_with_hits", "hits_returned", "elapsed_ms"}


def run(*args, **kw):
    return runner.invoke(app, list(args), env=ENV, **kw)


def test_help_lists_commands():
    r = run("--help")
    assert r.exit_code == 0
    for cmd in ("index", "query", "show", "similar", "stats", "analyze"):
        assert cmd in r.output
    for cmd in ("index", "query", "show", "similar", "stats", "analyze"):
        assert run(cmd, "--help").exit_code == 0


def test_version():
    from oimsearch import __version__

    r = run("--version")
    assert r.exit_code == 0 and r.output.strip() == f"oimsearch {__version__}"


def test_missing_index_is_one_line_exit_2(tmp_path):
    r = run("query", "x", "--index", str(tmp_path / "nonexistent"))
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oimsearch: error: ")
    assert "Traceback" not in r.stderr


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = run("query", "x", "--index", str(tmp_path))
    assert r.exit_code == 2 and "holds no oimsearch index" in r.stderr
    r = run("index", str(tmp_path), "--index", str(tmp_path))
    assert r.exit_code == 2 and "not empty" in r.stderr


def test_exit_codes_hit_and_no_hit(fixture_index):
    assert run("query", "migrants", "--index", str(fixture_index)).exit_code == 0
    r = run("query", "zzzqqqxx", "--index", str(fixture_index))
    assert r.exit_code == 1
    assert "No result" in r.stderr


def test_json_contract_key_sets(fixture_index):
    r = run("query", "traite RCA", "--json", "--index", str(fixture_index))
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert set(data) == TOP_KEYS
    assert set(data["index"]) == INDEX_KEYS
    assert set(data["total"]) == {"value", "relation"}
    assert data["format"] == 1 and data["offset_unit"] == "codepoint"
    assert data["hits"]
    for h in data["hits"]:
        assert set(h) == HIT_KEYS
        for s in h["snippets"]:
            assert set(s) == SNIPPET_KEYS
            for a, b in s["highlights"]:
                assert 0 <= a < b <= len(s["text"])
        for m in h["matched_terms"]:
            assert set(m) == {"field", "term"}
    assert [h["rank"] for h in data["hits"]] == list(range(1, len(data["hits"]) + 1))
    assert "\x1b[" not in r.stdout


def test_json_no_hits_is_valid_and_exit_1(fixture_index):
    r = run("query", "zzzqqqxx", "--json", "--index", str(fixture_index))
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["hits"] == [] and data["total"]["value"] == 0


def test_jsonl_messages(fixture_index):
    r = run("query", "migrants", "--jsonl", "--limit", "3", "--index", str(fixture_index))
    assert r.exit_code == 0
    msgs = [json.loads(line) for line in r.stdout.splitlines()]
    types = [m["type"] for m in msgs]
    assert types[0] == "begin" and types[-2:] == ["end", "summary"]
    assert types.count("hit") == 3
    for m in msgs:
        assert set(m) == {"type", "data"}
        keys = set(m["data"])
        expected = {
            "begin": BEGIN_KEYS,
            "hit": HIT_KEYS | {"qid"},
            "end": END_KEYS,
            "summary": SUMMARY_KEYS,
        }[m["type"]]
        assert keys == expected


def test_piped_output_is_tab_separated(fixture_index):
    r = run("query", "migrants", "--limit", "4", "--index", str(fixture_index))
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    for i, line in enumerate(lines, 1):
        rank, score, did, title = line.split("\t")
        assert int(rank) == i and float(score) > 0 and did and title
    assert "\x1b[" not in r.stdout


def test_pretty_no_color_and_always(fixture_index):
    r = run("query", "traite", "--pretty", "--index", str(fixture_index))
    assert r.exit_code == 0
    assert "\x1b[31m" not in r.stdout and "traite" in r.stdout
    assert "result" in r.stdout
    r2 = run("query", "traite", "--pretty", "--color", "always", "--index", str(fixture_index))
    assert "\x1b[" in r2.stdout


def test_pretty_never_interprets_markup(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text(
        "Titre [bold]piège[/b] :warning:\n\nLe texte [url=x] parle de migrants [1] en 2024.\n",
        encoding="utf-8",
    )
    ix = tmp_path / "ix"
    assert run("index", str(d), "--index", str(ix)).exit_code == 0
    r = run("query", "migrants", "--pretty", "--index", str(ix))
    assert "[url=x]" in r.stdout and ":warning:" in r.stdout and "[/b]" in r.stdout


def test_bad_option_values(fixture_index):
    r = run("query", "x", "--since", "hier", "--index", str(fixture_index))
    assert r.exit_code == 2 and "--since" in r.stderr
    r = run("query", "x", "--json", "--jsonl", "--index", str(fixture_index))
    assert r.exit_code == 2
    r = run("query", "*tion", "--index", str(fixture_index))
    assert r.exit_code == 2 and r.stderr.startswith("oimsearch: error:")
    r = run("query", "*", "--json", "--limit", "50", "--index", str(fixture_index))
    assert r.exit_code == 0 and json.loads(r.stdout)["total"]["value"] == 14  # every document


def test_show_similar_stats(fixture_index):
    did = "communiques/01-bangui-traite-des-personnes.txt"
    r = run("show", did, "--json", "--index", str(fixture_index))
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert set(doc) == {"id", "path", "title", "date", "place", "url", "meta", "body"}
    r = run("show", "nope", "--index", str(fixture_index))
    assert r.exit_code == 2 and "no document" in r.stderr
    r = run("similar", did, "--json", "--index", str(fixture_index))
    assert r.exit_code == 0 and set(json.loads(r.stdout)) == TOP_KEYS
    r = run("stats", "--json", "--acronyms", "--index", str(fixture_index))
    st = json.loads(r.stdout)
    assert st["documents"] == 14 and "RCA" in st["acronyms"]
    assert 0 < st["title_ratio"] <= 1
    r = run("stats", "--index", str(fixture_index))
    assert "documents" in r.stdout and "fr-light" in r.stdout


def test_analyze_rows():
    r = run("analyze", "L’OIM forme les déplacés", "--json")
    data = json.loads(r.stdout)
    toks = data["tokens"]
    text = "L’OIM forme les déplacés"
    for t in toks:
        assert text[t["start"] : t["end"]] == t["surface"]
    assert toks[0]["term"] == "oim" and any("elided" in s for s in toks[0]["steps"])
    stopped = [t for t in toks if t["surface"] == "les"]
    assert stopped and stopped[0]["term"] is None
    r = run("analyze", "L’OIM", "--exact")
    assert "oim" in r.stdout.lower()


def test_env_index_location(fixture_index, monkeypatch):
    r = runner.invoke(
        app, ["query", "migrants"], env={**ENV, "OIMSEARCH_INDEX": str(fixture_index)}
    )
    assert r.exit_code == 0


def test_cli_module_imports_only_typer():
    code = (
        "import sys; import oimsearch.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('whoosh', 'rich', 'unidecode', 'trafilatura', 'charset_normalizer') "
        # oimsearch's stand-in for Whoosh's English morphology (no file, nothing imported)
        "and getattr(sys.modules[m], '__file__', None)]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_json_path_never_imports_rich(fixture_index):
    code = (
        "import sys\n"
        f"sys.argv = ['oimsearch', 'query', 'migrants', '--json', '--index', {str(fixture_index)!r}]\n"
        "from oimsearch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('RICH' if any(m.split('.')[0] == 'rich' for m in sys.modules) else 'NORICH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.endswith("NORICH"), out.stderr
    assert json.loads(out.stdout)["hits"]


def test_json_query_imports_only_what_it_uses(fixture_index):
    """The query path stays light: no Rich, no extraction libraries, not even the indexer."""
    heavy = ("rich", "trafilatura", "lxml", "charset_normalizer", "justext", "htmldate")
    code = (
        "import sys\n"
        f"sys.argv = ['oimsearch', 'query', 'migrants', '--json', '--index', {str(fixture_index)!r}]\n"
        "from oimsearch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert json.loads(out.stdout)["hits"]
    loaded = set(out.stderr.split())
    assert not {m for m in loaded if m.split(".")[0] in heavy}
    assert not loaded & {"oimsearch.indexer", "oimsearch.sources", "oimsearch.acronyms"}
    assert "oimsearch.render_human" not in loaded
    assert "whoosh.qparser" not in loaded  # plain words: the tree is built without the parser


def _exe() -> str:
    exe = shutil.which("oimsearch", path=str(Path(sys.executable).parent))
    assert exe, "the oimsearch console script is not installed next to this python"
    return exe


def test_installed_executable_end_to_end(corpus_dir, tmp_path):
    exe = _exe()
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("OIMSEARCH_INDEX", None)
    ix = tmp_path / "ix"
    p = subprocess.run([exe, "index", str(corpus_dir), "--index", str(ix)], capture_output=True,
                       text=True, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "14 added" in p.stderr and "next: oimsearch query" in p.stderr
    p = subprocess.run([exe, "query", "traite", "--json", "--index", str(ix)],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert p.returncode == 0 and json.loads(p.stdout)["hits"]
    p = subprocess.run([exe, "query", "x", "--index", str(tmp_path / "none")],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "oimsearch", "--version"], capture_output=True,
                       text=True, env=env)  # fmt: skip
    assert p.returncode == 0 and p.stdout.startswith("oimsearch ")


def test_closed_pipe_is_quiet(corpus_dir, tmp_path, fixture_index):
    exe = _exe()
    p = subprocess.run(
        f"'{exe}' query OIM --limit 50 --pretty --index '{fixture_index}' | head -1",
        shell=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "Traceback" not in p.stderr and "Broken pipe" not in p.stderr


@pytest.mark.parametrize("sig_exit", [130])
def test_ctrl_c_exits_130(monkeypatch, tmp_path, sig_exit):
    import oimsearch.indexer as indexer

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(indexer, "index_paths", boom)
    d = tmp_path / "d"
    d.mkdir()
    r = run("index", str(d), "--index", str(tmp_path / "ix"))
    assert r.exit_code == sig_exit and "Traceback" not in r.stderr


def test_whoosh_english_modules_run_only_when_used(fixture_index):
    """A query never runs whoosh.lang.morph_en nor whoosh.lang.porter (English word
    variations and stemmer, regular expressions compiled at import: ~6 ms); their stand-ins
    run them for whoever uses them, and pickle still finds their functions."""
    code = (
        "import sys\n"
        f"sys.argv = ['oimsearch', 'query', 'migrants', '--json', '--index', {str(fixture_index)!r}]\n"
        "from oimsearch.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "names = ('whoosh.lang.morph_en', 'whoosh.lang.porter')\n"
        "ran = [n for n in names if sys.modules[n]._oimsearch_loaded]\n"
        "sys.stderr.write('RAN ' + ','.join(ran) if ran else 'DEFERRED')\n"
        "import pickle\n"
        "from whoosh.analysis import StemFilter, StemmingAnalyzer\n"
        "from whoosh.lang.morph_en import exceptions\n"
        "from whoosh.query.terms import variations\n"
        "assert 'pulled' in variations('pull') and len(exceptions) > 100\n"
        "assert [t.text for t in StemmingAnalyzer()('dogs walked')] == ['dog', 'walk']\n"
        "assert pickle.loads(pickle.dumps(StemFilter())).stemfn('dogs') == 'dog'\n"
        "assert all(sys.modules[n]._oimsearch_loaded for n in names)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hits"]
    assert out.stderr.endswith("DEFERRED"), out.stderr
    # a process whose first use is another name of the module gets the real one too
    code = "import oimsearch\nfrom whoosh.lang.porter import _mgr0\nprint(_mgr0.pattern)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("^"), out.stderr
