"""Seeding a results table for ``results_search.py``: a million works with realistic
variety (skewed pipelines, statuses, tags with rare ones, users, sites, 90 days of
creation times, and words with common and rare ones), through the store's own insert."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from processes import note

from workflow.buckets import Buckets
from workflow.store.sqlite import SqliteStore
from workflow.wire import Outcome, Withdraw
from workflow.work import Work

BATCH = 20_000
DAY = 86_400.0
SPAN = 90 * DAY
PAGE = 50

#: Pipelines and their share of the works, in percent.
PIPELINES = {
    "frb-l1": 38,
    "baseband": 20,
    "classifier": 14,
    "localization": 10,
    "intensity-callback": 8,
    "dm-refine": 5,
    "calibration": 3,
    "pulsar-timing": 2,
}
STATUSES = {"success": 90, "failure": 8, "cancelled": 2}
SITES = {"chime": 70, "kko": 20, "gbo": 10}
USERS = [f"user{n:02d}" for n in range(20)]
COMMON_TAGS = [f"tag{n:02d}" for n in range(45)]
RARE_TAGS = [f"raretag{n}" for n in range(5)]
#: Chance that a work carries a given rare tag.
RARE_TAG_P = 0.001
ERRORS = [
    "ValueError",
    "TimeoutError",
    "FileNotFoundError",
    "RuntimeError",
    "MemoryError",
    "KeyError",
]
WORDS = 5_000
#: Words of each work's parameters and results (and of a failure's error message).
WORDS_PER_WORK = 5
FUNCTIONS = {p: f"pipelines.{p.replace('-', '_')}.run" for p in PIPELINES}


@dataclass
class Vocabulary:
    """What the seed draws from, and the values the queries pick."""

    words: list[str]
    word_cum: list[float]
    user_cum: list[float]
    tag_cum: list[float]
    end: float  # creation of the newest work

    def common_words(self) -> list[str]:
        return self.words[:5]

    def rare_words(self) -> list[str]:
        return self.words[-50:]


def vocabulary(end: float) -> Vocabulary:
    """5,000 pseudo-words of six letters (so none is a prefix of another; FTS search
    matches prefixes) that are no prefix of any other token of a work, Zipf-weighted."""
    rng = random.Random(7)
    fixed = {t.lower() for t in (*USERS, *COMMON_TAGS, *RARE_TAGS, *SITES, *ERRORS)}
    fixed |= {part for f in FUNCTIONS.values() for part in f.replace("_", ".").split(".")}
    fixed |= {"event", "beam", "dm", "source", "note", "snr", "label", "comment", "chime"}
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < WORDS:
        word = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        if word not in seen and not any(t.startswith(word) for t in fixed):
            seen.add(word)
            words.append(word)
    return Vocabulary(words, zipf(WORDS), zipf(len(USERS)), zipf(len(COMMON_TAGS)), end)


def zipf(n: int) -> list[float]:
    """Cumulative Zipf weights of ``n`` choices: the k-th is drawn in proportion to 1/k."""
    return list(itertools.accumulate(1 / (k + 1) for k in range(n)))


def weighted(choices: dict[str, int]) -> tuple[list[str], list[float]]:
    return list(choices), list(itertools.accumulate(choices.values()))


def templates(store: SqliteStore, now: float) -> list[dict[str, Any]]:
    """A success, a failure (with an error) and a cancelled work, finished for real."""
    buckets = Buckets(store)
    works = [
        Work(
            pipeline="bench-template",
            function="bench.task",
            retries=0,
            parameters={"i": n},
            creation=now,
        ).payload()
        for n in range(3)
    ]
    buckets.deposit(works)
    want = Withdraw(pipelines=["bench-template"], limit=3, runner="runner-7", host="node-7")
    running = buckets.withdraw(want)
    if len(running) != 3:
        raise RuntimeError(f"withdrew {len(running)} template works, not 3")
    done, failed, cancelled = running
    buckets.complete(Outcome(id=done["id"], attempt=done["attempt"], status="success",
                             results={"snr": 1.0}))
    error = {
        "type": "ValueError",
        "message": "bad input",
        "traceback": 'Traceback (most recent call last):\n  File "task.py", line 42, '
        "in run\nValueError: bad input\n",
    }
    buckets.complete(Outcome(id=failed["id"], attempt=failed["attempt"], status="failure",
                             error=error))
    buckets.cancel(cancelled["id"], by="user00")
    out = []
    for doc in running:
        stored = store.results.get(doc["id"])
        assert stored is not None
        out.append(stored)
    return out


def seed(url: str, size: int, vocab: Vocabulary) -> None:
    """Fill the fresh store at ``url`` with ``size`` finished works.

    Raises:
        RuntimeError: the store does not hold exactly what was seeded.
    """
    rng = random.Random(42)
    pipelines, pipeline_cum = weighted(PIPELINES)
    statuses, status_cum = weighted(STATUSES)
    sites, site_cum = weighted(SITES)
    words, word_cum = vocab.words, vocab.word_cum
    store = SqliteStore(url)
    try:
        shapes = dict(
            zip(("success", "failure", "cancelled"), templates(store, vocab.end), strict=True)
        )
        begin = vocab.end - SPAN
        step = SPAN / size
        marks = {size * k // 10 for k in range(1, 10)}
        for first in range(0, size, BATCH):
            batch = []
            for i in range(first, min(size, first + BATCH)):
                status = rng.choices(statuses, cum_weights=status_cum)[0]
                pipeline = rng.choices(pipelines, cum_weights=pipeline_cum)[0]
                creation = begin + (i + rng.random()) * step
                start = creation + rng.expovariate(1 / 120)
                stop = start + min(3600.0, rng.lognormvariate(3, 1.5))
                tags = rng.choices(COMMON_TAGS, cum_weights=vocab.tag_cum, k=rng.randint(1, 3))
                tags = list(dict.fromkeys(tags))
                tags += [t for t in RARE_TAGS if rng.random() < RARE_TAG_P]
                w = rng.choices(words, cum_weights=word_cum, k=WORDS_PER_WORK)
                doc = shapes[status].copy()  # shallow: insert serializes each copy at once
                doc.update(
                    id=f"{int(creation):08x}{i % 0xFFFFFF:06x}{rng.getrandbits(40):010x}",
                    pipeline=pipeline,
                    function=FUNCTIONS[pipeline],
                    status=status,
                    site=rng.choices(sites, cum_weights=site_cum)[0],
                    user=rng.choices(USERS, cum_weights=vocab.user_cum)[0],
                    tags=tags,
                    event=[10_000_000 + i // 3],
                    priority=rng.randint(1, 5),
                    creation=creation,
                    start=start,
                    stop=stop,
                    parameters={
                        "event": 10_000_000 + i // 3,
                        "beam": rng.randrange(1024),
                        "dm": round(rng.uniform(50, 2000), 2),
                        "source": w[0],
                        "note": f"{w[1]} {w[2]}",
                    },
                    results=None,
                )
                entry = dict(doc["history"][0])
                entry.update(
                    claimed=start - 0.5,
                    started=start,
                    stopped=stop,
                    runner=f"runner-{rng.randrange(64)}",
                )
                if status == "success":
                    doc["results"] = {
                        "snr": round(rng.uniform(5, 100), 2),
                        "label": w[3],
                        "comment": w[4],
                    }
                elif status == "failure":
                    kind = rng.choice(ERRORS)
                    message = f"{kind} in {w[3]}: cannot process {w[4]}"
                    entry["error"] = {**entry["error"], "type": kind, "message": message}
                actions = [{**a, "at": stop} for a in doc["history"][1:]]  # cancelled
                doc["history"] = [entry, *actions]
                batch.append(doc)
                if i + 1 in marks:
                    note(f"  seeded {i + 1:,} works")
            if any(store.results.insert(batch)):
                raise RuntimeError("an id clashed while seeding")
        if store.results.delete([doc["id"] for doc in shapes.values()]) != 3:
            raise RuntimeError("the template works were not deleted")
        tally = store.results.tally()
        if sum(n for *_, n in tally) != size or {p for p, *_ in tally} - set(PIPELINES):
            raise RuntimeError(f"the tally does not match the seed: {tally}")
        indexed = store.index_text()  # what a server does in the background
        note(f"  indexed the words of {indexed:,} works")
        with store.reading() as db:
            (texts,) = db.execute("SELECT count(*) FROM results_text").fetchone()
        if texts != size:
            raise RuntimeError(f"results_text has {texts} rows, not {size}")
        for doc in store.results.find({"status": "failure"}, limit=20):
            Work.model_validate(doc)  # every seeded document is a valid work
    finally:
        store.close()  # the last connection to close checkpoints the WAL away


# -- the queries ------------------------------------------------------------------------
