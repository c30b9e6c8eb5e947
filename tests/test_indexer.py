"""Indexing: seeds, incremental updates, manifest, rebuild, locking, bad input."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from oimsearch.errors import IndexFormatError, IndexLockedError, UsageError
from oimsearch.indexer import _Lock, index_paths, resolve_index_dir
from oimsearch.searcher import Searcher
from tests.conftest import SHARED

SEEDS = SHARED / "seeds"


@pytest.fixture
def seeds(tmp_path) -> Path:
    if not SEEDS.is_dir():
        pytest.fail(f"{SEEDS} is missing: tests need ../shared beside the repository")
    dst = tmp_path / "seeds"
    shutil.copytree(SEEDS, dst)
    return dst


def _titles(ix) -> dict[str, str]:
    with Searcher(ix) as s:
        return {
            f["id"]: f["title"]
            for f in s.searcher.all_stored_fields()  # small index: fine
        }


def test_seeds_titles_menu_and_rerun(seeds, tmp_path):
    ix = tmp_path / "ix"
    r = index_paths([seeds], index_dir=ix)
    assert (r.added, r.failed) == (5, 0)
    titles = _titles(ix)
    assert len(titles) == 5
    menu_lines = set()
    first = sorted(seeds.iterdir())[0].read_text(encoding="utf-8").splitlines()
    menu_lines = {line.strip() for line in first[:20] if line.strip()}
    for t in titles.values():
        assert t.strip() and t.strip() not in menu_lines
        assert len(t) > 25  # an article title, not a one-word menu entry
    with Searcher(ix) as s:
        assert s.search('"Directrice générale adjointe"').hits == []
        # every menu word together: no document (the bodies use "directe", "générale"
        # on their own, which the stemmed OR search may still find)
        from oimsearch.ranking import RankingSettings

        strict = RankingSettings(operator="and", fuzzy=False)
        assert s.search("Directrice générale adjointe", settings=strict).hits == []
        assert s.search("adjointe").hits == []
        assert s.search("Structure organisationnelle", settings=strict).hits == []
    r2 = index_paths([seeds], index_dir=ix)
    assert (r2.added, r2.updated, r2.removed, r2.unchanged) == (0, 0, 0, 5)
    victim = sorted(seeds.iterdir())[2]
    victim_id = victim.name
    victim.unlink()
    r3 = index_paths([seeds], index_dir=ix)
    assert (r3.added, r3.updated, r3.removed, r3.unchanged) == (0, 0, 1, 4)
    titles3 = _titles(ix)
    assert set(titles3) == set(titles) - {victim_id}


def test_incremental_touch_modify_add(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("Premier titre\n\nLes migrants arrivent à Niamey.\n", encoding="utf-8")
    (d / "b.txt").write_text("Second titre\n\nLe retour volontaire.\n", encoding="utf-8")
    ix = tmp_path / "ix"
    assert index_paths([d], index_dir=ix).added == 2
    # touched, same content: hashed, not re-indexed
    os.utime(d / "a.txt", (time.time() + 10, time.time() + 10))
    r = index_paths([d], index_dir=ix)
    assert (r.added, r.updated, r.unchanged) == (0, 0, 2)
    (d / "b.txt").write_text("Second titre\n\nLa réintégration à Agadez.\n", encoding="utf-8")
    (d / "c.txt").write_text("Troisième\n\nUn nouveau document sur Agadez.\n", encoding="utf-8")
    r = index_paths([d], index_dir=ix)
    assert (r.added, r.updated, r.unchanged, r.removed) == (1, 1, 1, 0)
    with Searcher(ix) as s:
        assert {h.id for h in s.search("Agadez").hits} == {"b.txt", "c.txt"}
        assert s.search('"retour volontaire"').hits == []
    # no path: update the recorded roots
    (d / "c.txt").unlink()
    r = index_paths([], index_dir=ix)
    assert r.removed == 1 and r.documents == 2


def test_manifest_and_analyzer_mismatch(tmp_path, corpus_dir):
    ix = tmp_path / "ix"
    index_paths([corpus_dir], index_dir=ix)
    m = json.loads((ix / "oimsearch.json").read_text())
    assert m["format"] == 1 and m["analyzer"].startswith("fr-light") and m["documents"] == 14
    assert m["oimsearch"] and m["roots"]
    m["analyzer"] = "fr-light-0"
    (ix / "oimsearch.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError) as e1:
        Searcher(ix)
    assert "--rebuild" in e1.value.one_line() and "fr-light-0" in e1.value.one_line()
    with pytest.raises(IndexFormatError) as e2:
        index_paths([corpus_dir], index_dir=ix)
    assert "--rebuild" in e2.value.one_line()
    r = index_paths([corpus_dir], index_dir=ix, rebuild=True)
    assert r.rebuilt and r.added == 14
    with Searcher(ix) as s:
        assert s.search("traite").hits
    # only the new generation's files are left
    names = {p.name.split("_")[0 if not p.name.startswith("_") else 1] for p in ix.iterdir()
             if p.suffix in (".toc", ".seg", ".pst", ".trm", ".col")}  # fmt: skip
    assert len(names) == 1


def test_lock_held_gives_clear_error(tmp_path, corpus_dir):
    ix = tmp_path / "ix"
    index_paths([corpus_dir], index_dir=ix)
    with _Lock(ix):
        with pytest.raises(IndexLockedError, match="being updated by another process"):
            index_paths([corpus_dir], index_dir=ix, lock_timeout=0.3)
        with Searcher(ix) as s:  # queries keep working
            assert s.search("migrants").hits


def test_index_location_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("OIMSEARCH_INDEX", str(tmp_path / "env"))
    assert resolve_index_dir(str(tmp_path / "opt")) == tmp_path / "opt"
    assert resolve_index_dir(None) == tmp_path / "env"
    monkeypatch.delenv("OIMSEARCH_INDEX")
    assert resolve_index_dir(None) == Path("index")


def test_no_path_and_no_index(tmp_path):
    with pytest.raises(UsageError):
        index_paths([], index_dir=tmp_path / "ix")


def test_bad_inputs_are_reported_and_rest_indexed(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "good.txt").write_text("Bon titre\n\nDes migrants à Tunis.\n", encoding="utf-8")
    (d / "empty.txt").write_text("   \n\n", encoding="utf-8")
    (d / "bin.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (d / "bad.jsonl").write_text('{"id": "x1", "body": "Texte valide à Tunis"}\nnot json\n'
                                 '{"id": "x1", "body": "doublon"}\n', encoding="utf-8")  # fmt: skip
    ix = tmp_path / "ix"
    r = index_paths([d], index_dir=ix)
    assert r.added == 2  # good.txt and x1
    assert r.failed >= 3  # binary, bad line, duplicate id
    assert r.skipped >= 1  # empty
    reasons = " | ".join(f"{p.path}: {p.reason}" for p in r.problems)
    assert "bin.txt" in reasons and "empty.txt" in reasons and "bad.jsonl:2" in reasons
    assert "duplicate" in reasons


def test_duplicate_id_across_files(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.jsonl").write_text('{"id": "same", "body": "un texte"}\n', encoding="utf-8")
    (d / "b.jsonl").write_text('{"id": "same", "body": "autre texte"}\n', encoding="utf-8")
    r = index_paths([d], index_dir=tmp_path / "ix")
    assert r.added == 1 and r.failed == 1
    assert "duplicate id 'same'" in r.problems[0].reason


def test_jsonl_corpus_format(tmp_path):
    import gzip

    p = tmp_path / "docs.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        for i in range(30):
            f.write(json.dumps({"id": f"d{i}", "title": f"Titre {i}", "body": f"corps {i} asile",
                                "date": "2024-01-0" + str(1 + i % 9), "extra": i}) + "\n")  # fmt: skip
    ix = tmp_path / "ix"
    r = index_paths([p], index_dir=ix)
    assert r.added == 30
    with Searcher(ix) as s:
        res = s.search("asile", limit=100)
        assert res.total == 30
        assert s.document("d3").meta.get("extra") == 3


def test_update_adding_a_segment_without_acronyms(tmp_path):
    """A segment none of whose documents defines an acronym has no acronyms column; Whoosh's
    multi-segment column reader then read the wrong segment (IndexError on the update)."""
    from oimsearch.indexer import index_paths
    from oimsearch.schema import read_manifest

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Appel\n\nL'Organisation internationale pour les migrations (OIM) lance un appel.\n",
        encoding="utf-8",
    )
    (corpus / "b.txt").write_text("Note\n\nUne note sans sigle.\n", encoding="utf-8")
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    assert "OIM" in read_manifest(ix).acronyms
    (corpus / "b.txt").write_text("Note\n\nUne note modifiée, sans sigle.\n", encoding="utf-8")
    (corpus / "c.txt").write_text("Autre\n\nUn texte de plus.\n", encoding="utf-8")
    report = index_paths([corpus], index_dir=ix)
    assert (report.added, report.updated, report.failed) == (1, 1, 0)
    m = read_manifest(ix)
    assert "OIM" in m.acronyms and m.documents == 3 and m.files == 3


def test_title_ratio_kept_over_updates_and_filled_in_for_older_manifests(tmp_path):
    from oimsearch.indexer import index_paths, title_key
    from oimsearch.schema import read_manifest, write_manifest

    assert title_key("") == 0 and title_key("  ") == 0
    assert title_key("Le  Titre") == title_key("le titre") != title_key("le titre 2")
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Bilan annuel\n\nPremier texte.\n", encoding="utf-8")
    (corpus / "b.txt").write_text("Bilan annuel\n\nDeuxième texte.\n", encoding="utf-8")
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    assert read_manifest(ix).title_ratio == pytest.approx(0.5)
    # an update adds a segment: the ratio is over the whole index
    (corpus / "c.txt").write_text("Autre titre\n\nTroisième texte.\n", encoding="utf-8")
    (corpus / "d.txt").write_text("Encore un titre\n\nQuatrième texte.\n", encoding="utf-8")
    index_paths([corpus], index_dir=ix)
    assert read_manifest(ix).title_ratio == pytest.approx(3 / 4)
    # a manifest written before the ratio: a no-change run fills it in
    m = read_manifest(ix)
    m.title_ratio = None
    write_manifest(ix, m)
    report = index_paths([corpus], index_dir=ix)
    assert report.unchanged == 4
    assert read_manifest(ix).title_ratio == pytest.approx(3 / 4)
