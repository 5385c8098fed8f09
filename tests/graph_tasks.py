"""Tasks for the graph tests (importable by every engine's processes)."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from workflow.graph import Task


class Add(Task, input_names=["a"], optional_input_names=["b", "delay"], output_names=["sum"]):
    def run(self) -> None:
        time.sleep(self.inputs.delay or 0)
        self.outputs.sum = self.inputs.a + (self.inputs.b or 0)


class Double(Task, input_names=["x"], optional_input_names=["delay"], output_names=["y"]):
    def run(self) -> None:
        time.sleep(self.inputs.delay or 0)
        self.outputs.y = 2 * self.inputs.x


class Fail(Task, input_names=["x"], output_names=["y"]):
    def run(self) -> None:
        raise ValueError(f"cannot use {self.inputs.x}")


class Count(Task, input_names=["n"], optional_input_names=["limit", "delay"],
            output_names=["n", "done"]):  # fmt: skip
    def run(self) -> None:
        time.sleep(self.inputs.delay or 0)
        self.outputs.n = self.inputs.n + 1
        self.outputs.done = self.outputs.n >= (self.inputs.limit or 5)


class Partly(Task, input_names=["x"], output_names=["early", "late"]):
    """Sets one output, then raises."""

    def run(self) -> None:
        self.outputs.early = self.inputs.x * 10
        raise ValueError("failed after setting early")


class Scaled(BaseModel):
    x: int
    factor: float = 2.0


class Scale(Task, input_model=Scaled, output_names=["y", "label"]):
    """Inputs validated by a pydantic model; says its node's label."""

    def run(self) -> None:
        self.outputs.y = self.inputs.x * self.inputs.factor
        self.outputs.label = self.label


def node(id: str, task: str, task_type: str = "class", **inputs: object) -> dict[str, object]:
    """A node dict of ``graph_tasks.TASK`` (or another identifier) with default inputs."""
    identifier = task if "." in task else f"graph_tasks.{task}"
    return {"id": id, "task_type": task_type, "task_identifier": identifier,
            "default_inputs": [{"name": k, "value": v} for k, v in inputs.items()]}


def link(source: str, target: str, *pairs: tuple[str, str], **attrs: object) -> dict[str, object]:
    """A link mapping ``(source_output, target_input)`` pairs."""
    mapping = [{"source_output": s, "target_input": t} for s, t in pairs]
    return {"source": source, "target": target, **({"data_mapping": mapping} if pairs else {}),
            **attrs}


class Sleep(Task, input_names=["pidfile", "seconds"], output_names=["slept"]):
    """Writes the pid of the process it runs in to ``pidfile``, then sleeps."""

    def run(self) -> None:
        from pathlib import Path

        Path(self.inputs.pidfile).write_text(str(os.getpid()))
        time.sleep(self.inputs.seconds)
        self.outputs.slept = self.inputs.seconds


def three_in_a_row(seconds: float) -> dict[str, object]:
    """first → second → third, of the tests' ``usertasks`` functions: the middle one
    sleeps ``seconds``, so the first has ended while it runs."""
    return {"graph": {"id": "three"},
            "nodes": [node("first", "usertasks.double", "method", x=1),
                      node("second", "usertasks.slow", "method", seconds=seconds),
                      node("third", "usertasks.double", "method", x=2)],
            "links": [link("first", "second"), link("second", "third")]}  # fmt: skip
