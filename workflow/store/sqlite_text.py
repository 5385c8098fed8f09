"""Text search over the SQLite results: the words of a search as a full-text query that
SQLite reads from its index as it goes, instead of gathering every match in memory.

Every word of a search matches as a prefix: ``soak`` finds ``soak`` and ``soaked``. FTS5
answers a prefix query (``"soak"*``) by first copying the matches of every indexed word
that starts with it into one list in memory, a few bytes per matching work, each time:
for a word in 120,000 works 1 MB for each of a search's two or three queries, so the
server's memory grew with its results (``benchmarks/memory_soak.py``). A plain word, or
an OR of a few, FTS5 reads from the index as it goes. So a word of ASCII letters and
digits (which the index's tokenizer only folds to lower case) is looked up in the
index's vocabulary first and, if at most ``EXPAND`` indexed words start with it,
replaced by their OR: the same matches. Any other word stays a prefix query.
"""

from __future__ import annotations

import re
import sqlite3

#: A word that more indexed words than this start with stays a prefix query.
EXPAND = 8
_PLAIN = re.compile(r"[0-9A-Za-z]+")
#: The index's vocabulary, one row per indexed word (a table of this connection only).
VOCABULARY = ("CREATE VIRTUAL TABLE IF NOT EXISTS temp.results_words "
              "USING fts5vocab(main, results_text, row)")  # fmt: skip


def fts_query(db: sqlite3.Connection, text: str) -> str:
    """The FTS5 query for ``text``: every word must appear, as a prefix.

    Args:
        db: The connection that will run the query (its snapshot of the index is the
            one whose words are looked up).
        text: What the user typed; quotes keep FTS5 syntax out of it.
    """
    return " AND ".join(_word(db, word) for word in text.split()) or '""'


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _word(db: sqlite3.Connection, word: str) -> str:
    if not _PLAIN.fullmatch(word):
        return _quoted(word) + "*"
    low = word.lower()
    after = low[:-1] + chr(ord(low[-1]) + 1)  # the first string past every low...
    db.execute(VOCABULARY)
    found = db.execute("SELECT term FROM temp.results_words WHERE term >= ? AND term < ? "
                       "LIMIT ?", (low, after, EXPAND + 1)).fetchall()  # fmt: skip
    if not found or len(found) > EXPAND:  # nothing to read, or too many words to OR
        return _quoted(word) + "*"
    return "(" + " OR ".join(_quoted(term) for (term,) in found) + ")"
