"""ewokscore tasks, unchanged, for the comparison in ``ewoks_compare.py`` (importable only
where ewokscore is installed: ``.venv-ewoks``)."""

from __future__ import annotations

from ewokscore import Task
from ewokscore.model import BaseInputModel


class Who(Task, input_names=["x"], output_names=["label", "node", "y"]):  # type: ignore[call-arg]
    """Says the label and id of the node it runs as."""

    def run(self) -> None:
        self.outputs.label = self.label
        self.outputs.node = str(self.node_id)
        self.outputs.y = self.inputs.x + 1


class Partly(Task, input_names=["x"], output_names=["early", "late"]):  # type: ignore[call-arg]
    """Sets one output, then raises."""

    def run(self) -> None:
        self.outputs.early = self.inputs.x * 10
        raise ValueError("failed after setting early")


class Scaled(BaseInputModel):  # type: ignore[misc]
    x: int
    factor: float = 2.0


class Scale(Task, input_model=Scaled, output_names=["y"]):  # type: ignore[call-arg]
    """Inputs validated by a pydantic model."""

    def run(self) -> None:
        self.outputs.y = self.inputs.x * self.inputs.factor
