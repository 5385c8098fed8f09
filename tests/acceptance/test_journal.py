"""The outbox journal: a live runner's journal is never adopted; a dead one's is, once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from workflow.history import ErrorInfo
from workflow.runner.outbox import Journal
from workflow.wire import Outcome

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workflow.runner.outbox import Journal
    from workflow.wire import Outcome
    journal = Journal.open(Path(sys.argv[1]))
    journal.append([Outcome(id="w1", attempt=1, status="success")])
    print("holding", flush=True)
    time.sleep(60)
""")


def test_a_live_runners_journal_is_left_alone_and_a_dead_ones_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "1-1.journal"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert Journal.open(path, adopt=True) is None, "its runner still holds it"
    finally:
        holder.kill()
        holder.communicate()
    adopted = Journal.open(path, adopt=True)
    assert adopted is not None
    assert [r.id for r in adopted.pending()] == ["w1"]
    assert Journal.open(path, adopt=True) is None, "one adopter at a time"
    adopted.settle(adopted.pending())
    assert adopted.pending() == []
    adopted.close(remove=True)
    assert not path.exists() and Journal.open(path, adopt=True) is None


def test_pending_skips_settled_outcomes_and_a_line_cut_short(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "2-2.journal")
    assert journal is not None
    outcomes = [Outcome(id=f"w{n}", attempt=1, status="success") for n in range(4)]
    journal.append(outcomes)
    journal.settle(outcomes[1:3])
    journal.append([outcomes[1].model_copy(update={"attempt": 2})])  # the same work, later
    with open(tmp_path / "2-2.journal", "ab") as out:
        out.write(b'{"id": "w9", "attem')
    assert [(r.id, r.attempt) for r in journal.pending()] == [("w0", 1), ("w3", 1), ("w1", 2)]
    journal.close(remove=False)


def test_a_journal_line_is_the_outcome_as_json_and_older_lines_still_read(tmp_path: Path
                                                                          ) -> None:  # fmt: skip
    path = tmp_path / "3-3.journal"
    journal = Journal.open(path)
    assert journal is not None
    error = ErrorInfo(type="Timeout", message="too slow")
    sent = Outcome(id="w1", attempt=2, status="failure", error=error, reason="timeout",
                   started=1.0, stop=2.0)  # fmt: skip
    journal.append([sent])
    assert orjson.loads(path.read_bytes().splitlines()[0]) == sent.wire()
    # A runner of an older version wrote its outcomes as {"id", "attempt", "body",
    # "reason"}: a runner adopting its journal still delivers them whole.
    older = {"id": "w2", "attempt": 1, "reason": "timeout",
             "body": {"status": "failure", "error": {"type": "Timeout"}, "stop": 3.0}}
    with open(path, "ab") as out:
        out.write(orjson.dumps(older) + b"\n" + b'{"id": "w3", "status": "no such"}\n')
    assert journal.pending() == [sent, Outcome(id="w2", attempt=1, status="failure",
                                               error=ErrorInfo(type="Timeout"), stop=3.0,
                                               reason="timeout")]  # fmt: skip
    journal.close(remove=True)
