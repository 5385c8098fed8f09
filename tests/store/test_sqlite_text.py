"""Text search over the SQLite results: plain words read from the index as it goes
(``workflow.store.sqlite_text``), and a common word's page found near the start of the
sort order, with the same answers as before and memory that does not grow with them."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow.results import Results, Search
from workflow.store import sqlite_collection
from workflow.store.sqlite import SqliteStore
from workflow.store.sqlite_text import fts_query
from workflow.work import Work

WORDS = ["soak", "soaked", "Soaking", "soap", "crab", "Ünïcode", "noop_tasks.noop", "t3",
         "12", "120", "1234"]  # fmt: skip


def _finished(i: int, note: str) -> dict[str, object]:
    doc = Work(pipeline="text", id=f"w{i:06d}", parameters={"note": note}).payload()
    doc["status"] = "success"
    return doc


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(f"sqlite:///{tmp_path / 'text.db'}")
    yield store
    store.close()


def test_a_plain_word_becomes_the_indexed_words_it_starts(store: SqliteStore) -> None:
    store.results.insert([_finished(i, word) for i, word in enumerate(WORDS)])
    store.index_text()
    with store.reading() as db:
        assert fts_query(db, "SOAK") == '("soak" OR "soaked" OR "soaking")'
        assert fts_query(db, "soak crab") == '("soak" OR "soaked" OR "soaking") AND ("crab")'
        assert fts_query(db, "soakx") == '"soakx"*'  # nothing to read
        assert fts_query(db, "noop_tasks.noop") == '"noop_tasks.noop"*'  # not one word
        assert fts_query(db, "Ün") == '"Ün"*'  # folded by the tokenizer, not here
        assert fts_query(db, '"') == '""""*'
        assert fts_query(db, "  ") == '""'


def test_plain_words_find_what_their_prefixes_find(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    store.results.insert([_finished(i, f"{word} w{i % 3}") for i, word in enumerate(WORDS * 3)])
    store.index_text()
    with store.reading() as db:
        monkeypatch.setattr("workflow.store.sqlite_text.EXPAND", 2)  # "1" is 3 words: a prefix
        for text in ["soak", "SOA", "s", "so w1", "crab", "unicode", "Ün", "noop", "noop_tasks",
                     "t", "1", "12", "w", "w2 t", "zzz", "t3 soak"]:  # fmt: skip
            prefixes = " AND ".join(f'"{word}"*' for word in text.split())
            wanted = db.execute("SELECT rowid FROM results_text WHERE results_text MATCH ? "
                                "ORDER BY rowid", (prefixes,)).fetchall()  # fmt: skip
            found = db.execute("SELECT rowid FROM results_text WHERE results_text MATCH ? "
                               "ORDER BY rowid", (fts_query(db, text),)).fetchall()  # fmt: skip
            assert found == wanted, text
            assert store.results.count({}, text=text) == len(wanted)


def test_walked_pages_near_the_start_or_past_it_are_the_sorted_ones(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    results = Results(store)
    store.results.insert([_finished(i, "pulsar" if i % 3 else "quiet") for i in range(60)])

    def pages() -> list[list[str]]:
        return [[doc["id"] for doc in results.search(Search(text="puls", skip=skip, limit=7))[0]]
                for skip in range(0, 42, 7)]  # fmt: skip

    sorted_pages = pages()
    near = sqlite_collection.SqliteCollection._near
    answers: list[bool] = []

    def counted(*args: object) -> list[int] | None:
        got = near(*args)  # type: ignore[arg-type]
        answers.append(got is not None)
        return got

    monkeypatch.setattr(sqlite_collection, "WALK", 30)  # every search walks, near = 30 rows
    monkeypatch.setattr(sqlite_collection.SqliteCollection, "_near", counted)
    assert pages() == sorted_pages
    assert sum(map(len, sorted_pages)) == 40
    assert True in answers and False in answers  # found near the start, and past it


def test_a_common_word_takes_no_memory_in_proportion_to_its_matches(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # SQLite used to gather every match of a prefix in one buffer, and a walked page
    # listed every match: both grew with the results, and the server's memory with them.
    sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 runs on
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
    monkeypatch.setattr(sqlite_collection, "WALK", 1000)  # walk from a few thousand on
    results = Results(store)
    peaks = []
    for first, end in ((0, 5_000), (5_000, 40_000)):
        store.results.insert([_finished(i, f"pulsar {i}") for i in range(first, end)])
        for _ in range(2):  # the second time with every cache as full as it gets
            before = sqlite.sqlite3_memory_used()
            sqlite.sqlite3_memory_highwater(1)
            items, total = results.search(Search(text="puls", limit=50))
            peak = sqlite.sqlite3_memory_highwater(1) - before
        assert (len(items), total) == (50, end)
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 128 << 10, f"{peaks[0] >> 10} KiB, then {peaks[1] >> 10} KiB"
