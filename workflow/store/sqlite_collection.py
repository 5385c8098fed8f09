"""One table of the SQLite store, the bucket (``work``) or the results: documents with
their indexed columns, Mongo-style queries compiled to SQL, compare-and-set updates,
and, for the results, text search through the full-text index."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workflow.errors import NotFound, TransitionConflict
from workflow.store.base import Doc, Query, Sort
from workflow.store.sqlite_outbox import write_notes
from workflow.store.sqlite_query import compile_query, json_path
from workflow.store.sqlite_schema import READ, column_values, dumps, read_doc
from workflow.store.sqlite_text import fts_query

if TYPE_CHECKING:
    from workflow.store.sqlite import SqliteStore

#: Above this many text matches, a page walks the sort order instead of sorting matches.
WALK = 20_000
#: A walked page first looks for its matches among this many pages' worth of the first
#: rows in the sort order (at most WALK rows).
NEAR = 20


class SqliteCollection:
    """The bucket or the results table (see ``workflow.store.base.Collection``)."""

    def __init__(self, store: SqliteStore, table: str, columns: tuple[str, ...]):
        self._store = store
        self.table = table
        self.columns = columns
        self._mapped = {"id": "id", **{name: name for name in columns if name != "expires"}}
        self._names = ", ".join(("id", *columns, "doc"))  # a row in insert order
        self._marks = ", ".join("?" * (len(columns) + 2))
        self._insert_sql = f"INSERT INTO {table} ({self._names}) VALUES ({self._marks})"
        sets = ", ".join(f"{name} = ?" for name in (*columns, "doc"))
        self._update_sql = f"UPDATE {table} SET {sets} WHERE id = ?"
        self._cas: dict[tuple[str, ...], str] = {}

    def row(self, doc: Doc) -> list[Any]:
        """Parameters of the insert statement for ``doc``."""
        return [doc["id"], *column_values(doc, self.columns), dumps(doc)]

    def insert(self, docs: list[Doc]) -> list[Doc | None]:
        with self._store.write() as db:
            return [self.insert_one(db, doc) for doc in docs]

    def insert_one(self, db: sqlite3.Connection, doc: Doc) -> Doc | None:
        """Insert inside an open write transaction; return the stored doc on a clash."""
        existing = self._store.find_anywhere(db, doc["id"])
        if existing is not None:
            return existing
        self.insert_row(db, doc)
        return None

    def insert_row(self, db: sqlite3.Connection, doc: Doc) -> None:
        """The insert statement, and for the results what search needs: tags in the tag
        table, and a note that the words are still to be indexed (``index_text``)."""
        rowid = db.execute(self._insert_sql, self.row(doc)).lastrowid
        assert rowid is not None  # set by every successful insert
        tallies = self._store.tallies
        tallies.add((self.table, doc["pipeline"], doc["status"]))
        if self.table != "results":
            return
        tags = [(tag, doc.get("creation"), doc["id"]) for tag in doc.get("tags") or ()
                if tag is not None]  # fmt: skip
        if tags:
            db.executemany("INSERT OR IGNORE INTO results_tags VALUES (?, ?, ?)", tags)
        db.execute("INSERT INTO results_unindexed (rowid) VALUES (?)", (rowid,))
        minute = int(float(doc.get("stop") or doc.get("creation") or 0) // 60 * 60)
        tallies.add(("minutes", minute, doc["pipeline"], doc["status"]))

    def get(self, id: str) -> Doc | None:
        rows = self._store.rows_here(f"SELECT {READ} FROM {self.table} WHERE id = ?", (id,))
        return read_doc(*rows[0]) if rows else None

    def _where(self, query: Query, text: str | None, *, counting: bool = False,
               walk: bool = False) -> tuple[str, list[Any]]:  # fmt: skip
        """The WHERE clause; for the results, ``text`` is an FTS5 query (``fts_query``).
        ``walk`` tests text matches row by row along the sort order (``+rowid`` keeps
        SQLite from driving the query from the match list)."""
        query = dict(query)
        tags = self._side_tags(query)
        sql, params = compile_query(query, self._mapped)
        if tags:
            marks = ", ".join("?" * len(tags))
            if counting:  # drive from the tags: few rows, whatever the order
                sql += f" AND id IN (SELECT id FROM results_tags WHERE tag IN ({marks}))"
            else:  # walk the sort order, probing the tags' primary key per row
                sql += (" AND EXISTS (SELECT 1 FROM results_tags t WHERE t.tag IN "
                        f"({marks}) AND t.creation IS results.creation AND t.id = results.id)")
            params += tags
        if text:
            if self.table == "results":
                sql += (f" AND {'+' if walk else ''}rowid IN "
                        "(SELECT rowid FROM results_text WHERE results_text MATCH ?)")
                params.append(text)
            else:
                sql += " AND instr(lower(doc), ?) > 0"
                params.append(text.lower())
        return sql, params

    def _text_count(self, match: str, most: int | None = None) -> int:
        """Works whose words match the FTS5 query ``match``; with ``most``, counting
        stops after that many (a common word's full count takes tens of milliseconds)."""
        sql = "SELECT rowid FROM results_text WHERE results_text MATCH ?"
        if most is not None:
            sql += f" LIMIT {int(most)}"
        return int(self._store.rows(f"SELECT count(*) FROM ({sql})", (match,))[0][0])

    def _side_tags(self, query: Query) -> list[str]:
        """Take a plain ``tags`` condition out of a results query, for the side table."""
        if self.table != "results":
            return []
        wanted = query.get("tags")
        if isinstance(wanted, str):
            wanted = {"$in": [wanted]}
        if (isinstance(wanted, dict) and set(wanted) == {"$in"} and wanted["$in"]
                and all(isinstance(t, str) for t in wanted["$in"])):
            del query["tags"]
            return list(wanted["$in"])
        return []

    def _order(self, sort: Sort | None) -> str:
        terms = []
        for field, direction in sort or []:
            column = self._mapped.get(field) or f"json_extract(doc, '{json_path(field)}')"
            terms.append(f"{column} {'DESC' if direction < 0 else 'ASC'}")
        if not any(term.startswith("id ") for term in terms):
            terms.append("id DESC" if sort and sort[-1][1] < 0 else "id ASC")
        return ", ".join(terms)

    def find(self, query: Query, *, sort: Sort | None = None, skip: int = 0,
             limit: int | None = None, text: str | None = None) -> list[Doc]:  # fmt: skip
        # A common word matches too many works to sort them all: walk the sort order
        # instead and test each row; a rare word is quicker the other way round.
        order = self._order(sort)
        if text and self.table == "results":
            text = self._match(text)
        walk = (bool(text) and self.table == "results"
                and self._text_count(text or "", most=WALK + 1) > WALK)  # fmt: skip
        if walk and limit is not None:
            near = self._near(query, order, text or "", skip + limit)
            if near is not None:
                return self._docs(near[skip:], order)
        where, params = self._where(query, text, walk=walk)
        # Sort and page the keys first, then read only the documents of the page.
        sql = (f"SELECT {READ} FROM {self.table} WHERE rowid IN (SELECT rowid FROM {self.table} "
               f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) ORDER BY {order}")
        params += [-1 if limit is None else limit, skip]
        return [read_doc(*row) for row in self._store.rows(sql, params)]

    def _near(self, query: Query, order: str, match: str, wanted: int) -> list[int] | None:
        """The rowids of the first ``wanted`` text matches in the sort order, if that
        many are among its first ``NEAR`` pages' worth of rows; else None.

        A common word matches most rows, so its page is near the start. Testing only
        those rows keeps the search's memory small: walking the whole sort order takes a
        list of every match (10 bytes a work, SQLite keeps up to 2 MB of it in memory).
        """
        where, params = self._where(query, None)
        sql = (f"SELECT rowid FROM results WHERE rowid IN (SELECT rowid FROM results_text "
               f"WHERE results_text MATCH ? AND +rowid IN (SELECT rowid FROM results "
               f"WHERE {where} ORDER BY {order} LIMIT ?)) ORDER BY {order} LIMIT ?")  # fmt: skip
        params = [match, *params, min(NEAR * wanted, WALK), wanted]
        rows = self._store.rows(sql, params)
        return [rowid for (rowid,) in rows] if len(rows) == wanted else None

    def _docs(self, rowids: list[int], order: str) -> list[Doc]:
        marks = ", ".join("?" * len(rowids))
        sql = f"SELECT {READ} FROM {self.table} WHERE rowid IN ({marks}) ORDER BY {order}"
        return [read_doc(*row) for row in self._store.rows(sql, rowids)]

    def _match(self, text: str) -> str:
        """The FTS5 query for ``text``, once every finished work's words are indexed."""
        self._store.index_text()
        with self._store.reading() as db:
            return fts_query(db, text)

    def count(self, query: Query, *, text: str | None = None) -> int:
        if text and self.table == "results":
            text = self._match(text)
            if not query:  # text alone: the index knows
                return self._text_count(text)
        only = dict(query)
        tags = self._side_tags(only)
        if not query and not text:
            sql, params = f"SELECT coalesce(sum(n), 0) FROM {self.table}_tally", []
        elif tags and not only and not text:  # tags alone: the tags table knows
            # One tag is one index range, each work in it once.
            sql = ("SELECT count(*) FROM results_tags WHERE tag = ?" if len(set(tags)) == 1
                   else "SELECT count(DISTINCT id) FROM results_tags WHERE tag IN "
                        f"({', '.join('?' * len(tags))})")  # fmt: skip
            params = tags[:1] if len(set(tags)) == 1 else tags
        else:
            where, params = self._where(query, text, counting=True)
            sql = f"SELECT count(*) FROM {self.table} WHERE {where}"
        return int(self._store.rows(sql, params)[0][0])

    def swap(self, id: str, expect: dict[str, Any], doc: Doc, notes: Sequence[Doc] = ()
             ) -> Doc:  # fmt: skip
        with self._store.write(alone=True) as db:
            self.swap_in(db, id, expect, doc)
            write_notes(db, notes)
        return doc

    def append(self, id: str, entries: list[Doc]) -> bool:
        with self._store.write(alone=True) as db:
            for entry in entries:
                done = db.execute(f"UPDATE {self.table} SET doc = json_set(doc, '$.history', "
                                  "json_insert(coalesce(json_extract(doc, '$.history'), "
                                  "json('[]')), '$[#]', json(?))) WHERE id = ?",
                                  (dumps(entry), id)).rowcount  # fmt: skip
                if not done:
                    return False
        return True

    def expected(self, expect: dict[str, Any]) -> tuple[str, list[Any]]:
        """SQL for a compare-and-set's expectation (``compile_query``, with the plain
        equalities on indexed columns that every state change uses compiled once)."""
        keys = tuple(expect)
        if all(k in self._mapped and type(v) in (str, int) for k, v in expect.items()):
            where = self._cas.get(keys)
            if where is None:
                where = self._cas[keys] = " AND ".join(f"{self._mapped[k]} = ?" for k in keys)
            return where, list(expect.values())
        return compile_query(expect, self._mapped)

    def swap_in(self, db: sqlite3.Connection, id: str, expect: dict[str, Any], doc: Doc) -> None:
        """Compare-and-set inside an open write transaction: one guarded UPDATE.

        The counts need the pipeline and status the work leaves, which RETURNING cannot
        give (it returns the new row). So the statement also checks what they are
        assumed to be: the pipeline unchanged, and the status the expected one (or
        unchanged, when ``expect`` names no status). A change of pipeline is rare; so is
        a conflict. Only when nothing matches does a read tell the cases apart: no such
        work (``NotFound``), not as expected (``TransitionConflict``), or as expected
        but in another pipeline or status, which the guarded update then takes as is.
        """
        where, params = self.expected(expect)
        values = [*column_values(doc, self.columns), dumps(doc), id, *params]
        status = expect.get("status")
        old = (doc["pipeline"], status if isinstance(status, str) else doc["status"])
        swapped = db.execute(f"{self._update_sql} AND {where} AND pipeline = ? AND status = ? "
                             "RETURNING pipeline, status", [*values, *old]).fetchone()  # fmt: skip
        if swapped is None:
            # Nothing else writes between this read and the update below: this
            # transaction holds the write lock.
            found = db.execute(f"SELECT pipeline, status FROM {self.table} "
                               f"WHERE id = ? AND {where}", [id, *params]).fetchone()  # fmt: skip
            if found is None:
                raise self.conflict(db, id, expect)
            old = found
            swapped = db.execute(f"{self._update_sql} AND {where} RETURNING pipeline, status",
                                 values).fetchone()  # fmt: skip
        self._store.tallies.moved(self.table, tuple(old), tuple(swapped))

    def take(self, db: sqlite3.Connection, id: str, expect: dict[str, Any]) -> list[Any]:
        """Compare-and-delete inside an open write transaction: one guarded DELETE.

        Returns:
            The deleted row as ``put_back`` takes it: its pipeline and status (for the
            counts), then rowid, id, the columns and doc.

        Raises:
            NotFound: no work ``id`` here.
            TransitionConflict: the stored work does not match ``expect``.
        """
        where, params = self.expected(expect)
        row = db.execute(f"DELETE FROM {self.table} WHERE id = ? AND {where} "
                         f"RETURNING pipeline, status, rowid, {self._names}",
                         [id, *params]).fetchone()  # fmt: skip
        if row is None:
            raise self.conflict(db, id, expect)
        self._store.tallies.add((self.table, row[0], row[1]), -1)
        return list(row)

    def put_back(self, db: sqlite3.Connection, row: list[Any]) -> None:
        """Undo ``take`` in the same transaction: the row again, with its rowid."""
        db.execute(f"INSERT INTO {self.table} (rowid, {self._names}) "
                   f"VALUES (?, {self._marks})", row[2:])  # fmt: skip
        self._store.tallies.add((self.table, row[0], row[1]))

    def conflict(self, db: sqlite3.Connection, id: str, expect: dict[str, Any]
                 ) -> NotFound | TransitionConflict:  # fmt: skip
        """The error for a compare-and-set on ``id`` that matched nothing (a read made
        only then, inside the same transaction)."""
        row = db.execute(f"SELECT status, attempt FROM {self.table} WHERE id = ?",
                         (id,)).fetchone()  # fmt: skip
        if row is None:
            where = "bucket" if self.table == "work" else self.table
            return NotFound(f"no work {id} in the {where}", field="id", id=id)
        return TransitionConflict(
            f"work {id} is {row[0]} at attempt {row[1]}, not as expected {expect}",
            field="attempt" if "attempt" in expect else "status",
            id=id, status=row[0], attempt=row[1], expected=expect,
        )

    def delete(self, ids: list[str]) -> int:
        removed = 0
        with self._store.write() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                gone = db.execute(f"DELETE FROM {self.table} WHERE id IN ({marks}) "
                                  "RETURNING pipeline, status", chunk).fetchall()  # fmt: skip
                for pipeline, status in gone:
                    self._store.tallies.add((self.table, pipeline, status), -1)
                removed += len(gone)
        return removed

    def tally(self) -> list[tuple[str, str, int]]:
        rows = self._store.rows(f"SELECT pipeline, status, n FROM {self.table}_tally "
                                "WHERE n > 0 ORDER BY pipeline, status")  # fmt: skip
        return [(str(p), str(s), int(n)) for p, s, n in rows]
