"""Shared fixtures: the hand-written French corpus indexed once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("OIMSEARCH_INDEX", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """A copy of the fixture corpus (its .oimsearchignore leaves the README out)."""
    dst = tmp_path_factory.mktemp("corpus") / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dst)
    return dst


@pytest.fixture(scope="session")
def fixture_index(corpus_dir, tmp_path_factory) -> Path:
    from oimsearch.indexer import index_paths

    ix = tmp_path_factory.mktemp("ix") / "index"
    report = index_paths([corpus_dir], index_dir=ix)
    assert report.failed == 0, report.problems
    return ix


@pytest.fixture(scope="session")
def searcher(fixture_index):
    from oimsearch.searcher import Searcher

    s = Searcher(fixture_index)
    yield s
    s.close()


def ids(result) -> list[str]:
    return [h.id for h in result.hits]


def env_without_color() -> dict:
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("OIMSEARCH_INDEX", None)
    return env
