"""Workflow graphs in the Ewoks format: nodes, links, and what the scheduler and the
checks need to know about them (``workflow.graph.loading`` reads them).

A graph is a node-link dict (``graph``, ``nodes``, ``links``), from JSON or YAML, inline,
in a file, or in a package (``package.name`` for ``name.json``/``.yaml`` inside
``package``). Loading flattens sub-graphs (a node of ``task_type: graph``: its nodes get
ids ``(parent, inner)``), merges parallel links, connects default error handlers and
checks the graph; every problem is an ``InvalidGraph`` that names the node or link.
Unknown keys are kept, so a dump round-trips what Ewoks tools wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from workflow.errors import InvalidGraph
from workflow.graph.tasks import declared, resolve

NodeId = Hashable


def display(node_id: NodeId) -> str:
    """A node id as text: ``a``, and ``graph:inner`` for nodes from sub-graphs."""
    if isinstance(node_id, tuple):
        return ":".join(display(part) for part in node_id)
    return str(node_id)


def as_id(raw: Any) -> NodeId:
    """A node id from JSON: lists (sub-graph ids) become tuples."""
    return tuple(as_id(part) for part in raw) if isinstance(raw, list) else raw


def as_json_id(node_id: NodeId) -> Any:
    return [as_json_id(p) for p in node_id] if isinstance(node_id, tuple) else node_id


@dataclass
class Node:
    """One task of a graph; ``attrs`` holds every key as written."""

    id: NodeId
    attrs: dict[str, Any]

    @property
    def task_type(self) -> str:
        return str(self.attrs.get("task_type"))

    @property
    def identifier(self) -> Any:
        return self.attrs.get("task_identifier")

    @property
    def label(self) -> str:
        return str(self.attrs.get("label") or display(self.id))

    @property
    def default_inputs(self) -> dict[Any, Any]:
        """The static inputs by name (later entries win)."""
        return {item["name"]: item.get("value") for item in self.attrs.get("default_inputs") or []}

    def set_input(self, name: Any, value: Any) -> None:
        """Replace the default input ``name`` (compared literally), or add it."""
        items = [dict(i) for i in self.attrs.get("default_inputs") or []]
        for item in items:
            if item["name"] == name:
                item["value"] = value
                break
        else:
            items.append({"name": name, "value": value})
        self.attrs["default_inputs"] = items


@dataclass
class Link:
    """A link between two nodes; ``attrs`` holds every key but source and target."""

    source: NodeId
    target: NodeId
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def data_mapping(self) -> list[dict[str, Any]]:
        return list(self.attrs.get("data_mapping") or [])

    @property
    def map_all_data(self) -> bool:
        return bool(self.attrs.get("map_all_data"))

    @property
    def conditions(self) -> list[dict[str, Any]]:
        return list(self.attrs.get("conditions") or [])

    @property
    def on_error(self) -> bool:
        return bool(self.attrs.get("on_error"))

    @property
    def conditional(self) -> bool:
        """Whether the link fires only sometimes (conditions or errors)."""
        return bool(self.conditions) or self.on_error


class Graph:
    """A loaded, flattened and checked graph.

    Attributes:
        attrs: The graph's own keys (``id``, ``label``, ...).
        nodes: The nodes by id, in the order written.
        links: The links, in the order written.
    """

    def __init__(self, attrs: dict[str, Any], nodes: list[Node], links: list[Link]):
        self.attrs = attrs
        self.nodes = {node.id: node for node in nodes}
        self.links = links
        self._index()

    def add_links(self, links: list[Link]) -> None:
        """Add links (the analysis follows)."""
        self.links.extend(links)
        self._index()

    def descendants(self, node_id: NodeId) -> set[NodeId]:
        """Every node reachable from ``node_id`` (not itself, even on a cycle)."""
        seen, todo = {node_id}, [node_id]
        while todo:
            for target in self._successors.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen - {node_id}

    def _index(self) -> None:
        """(Re)build the analysis structures after the links changed."""
        self._successors: dict[NodeId, list[NodeId]] = {}
        for link in self.links:
            self._successors.setdefault(link.source, []).append(link.target)
        self._optional: set[NodeId] | None = None

    @property
    def id(self) -> str:
        return str(self.attrs.get("id") or "notspecified")

    # -- structure -----------------------------------------------------------------------

    def incoming(self, node_id: NodeId) -> list[Link]:
        return [link for link in self.links if link.target == node_id]

    def outgoing(self, node_id: NodeId) -> list[Link]:
        return [link for link in self.links if link.source == node_id]

    def is_cyclic(self) -> bool:
        return self.cycle(self.links) is not None

    def cycle(self, links: Iterable[Link]) -> list[NodeId] | None:
        """A cycle made of ``links``: its nodes in link order, from the one written first
        (a self-loop is one node); None if the links make none."""
        sorter: TopologicalSorter[NodeId] = TopologicalSorter()
        for link in links:
            sorter.add(link.target, link.source)
        try:
            sorter.prepare()
        except CycleError as exc:
            ring = list(exc.args[1][:-1])  # graphlib repeats the first node at the end
            where = {node_id: n for n, node_id in enumerate(self.nodes)}
            first = min(range(len(ring)), key=lambda n: where.get(ring[n], len(where)))
            return ring[first:] + ring[:first]
        return None

    def has_conditions(self) -> bool:
        return any(link.conditional for link in self.links)

    def required(self, link: Link) -> bool:
        """Whether ``link`` must deliver before its target runs: ``required`` as written;
        otherwise not for a conditional or error link, nor for a link whose source is
        reached, however far up, through a link that is not required."""
        if link.attrs.get("required") is not None:
            return bool(link.attrs["required"])
        if link.conditional:
            return False
        return link.source not in self._optional_region()

    def _optional_region(self) -> set[NodeId]:
        if self._optional is None:
            seeds = {link.target for link in self.links
                     if link.conditional or link.attrs.get("required") is False}  # fmt: skip
            region = set(seeds)
            for seed in seeds:
                region |= self.descendants(seed)
            self._optional = region
        return self._optional

    def start_nodes(self) -> list[NodeId]:
        """Nodes without predecessors, and those marked ``force_start_node``; if there
        are none, the class nodes whose required inputs all have defaults and that have
        no required predecessor."""
        found = [n for n, node in self.nodes.items()
                 if not self.incoming(n) or node.attrs.get("force_start_node")]  # fmt: skip
        if found:
            return found
        out = []
        for n, node in self.nodes.items():
            if node.task_type != "class" or any(self.required(k) for k in self.incoming(n)):
                continue
            try:
                needed = declared(resolve("class", node.identifier), "input_names")
            except InvalidGraph:
                continue
            if set(needed) <= set(node.default_inputs):
                out.append(n)
        return out

    def end_nodes(self) -> list[NodeId]:
        """Nodes with no successor but through error links; if there are none, the nodes
        whose conditions leave some value of an output unhandled."""
        pure = [n for n in self.nodes
                if all(link.on_error for link in self.outgoing(n))]  # fmt: skip
        if pure:
            return pure
        return [n for n in self.nodes if self._uncovered(n)]

    def _uncovered(self, node_id: NodeId) -> bool:
        else_value = self.nodes[node_id].attrs.get("conditions_else_value")
        values: dict[Any, list[Any]] = {}
        for link in self.outgoing(node_id):
            for condition in link.conditions:
                values.setdefault(condition.get("source_output"), []).append(condition.get("value"))
        for used in values.values():
            if any(isinstance(v, bool) for v in used) or else_value not in used:
                return True
        return False

    def select(self, selector: dict[str, Any]) -> list[NodeId]:
        """Nodes an Ewoks selector picks: ``id``; else ``label`` and/or
        ``task_identifier`` (a suffix match); else ``all`` (every node, or the start
        nodes when false or absent)."""
        if "id" in selector:
            wanted = as_id(selector["id"])
            return [wanted] if wanted in self.nodes else []
        label, identifier = selector.get("label"), selector.get("task_identifier")
        if label is not None or identifier is not None:
            return [n for n, node in self.nodes.items()
                    if (label is None or node.label == label)
                    and (identifier is None or str(node.identifier).endswith(identifier))]
        return list(self.nodes) if selector.get("all") else self.start_nodes()

    def with_inputs(self, inputs: Iterable[dict[str, Any]]) -> Graph:
        """A copy in which each input (a selector plus ``name`` and ``value``) became a
        default input of the nodes it selects (values arriving over links still win)."""
        graph = self.copy()
        for n, item in enumerate(inputs):
            if "name" not in item or "value" not in item:
                raise InvalidGraph(f"inputs[{n}] needs a name and a value", field=f"inputs[{n}]")
            for node_id in graph.select(item):
                graph.nodes[node_id].set_input(item["name"], item["value"])
        return graph

    def with_parameters(self, parameters: dict[str, Any] | None) -> Graph:
        """A copy with plain parameters as graph inputs: ``name`` goes to the start nodes,
        ``node:name`` to the node with that id (as text: ``sub:inner`` for sub-graph
        nodes) or label."""
        inputs = []
        for key, value in (parameters or {}).items():
            where, colon, name = str(key).rpartition(":")
            targets = [n for n, node in self.nodes.items()
                       if colon and where in (display(n), node.label)]  # fmt: skip
            if targets:
                inputs += [{"id": as_json_id(n), "name": name, "value": value} for n in targets]
            else:
                inputs.append({"name": key, "value": value})
        return self.with_inputs(inputs)

    def copy(self) -> Graph:
        return Graph(copy.deepcopy(self.attrs), [Node(n.id, copy.deepcopy(n.attrs))
                                                 for n in self.nodes.values()],
                     [Link(k.source, k.target, copy.deepcopy(k.attrs)) for k in self.links])

    def dump(self) -> dict[str, Any]:
        """The graph as a node-link dict (sub-graph ids as lists), ready for JSON or YAML."""
        return {
            "graph": copy.deepcopy(self.attrs),
            "nodes": [{"id": as_json_id(n.id), **copy.deepcopy(n.attrs)}
                      for n in self.nodes.values()],
            "links": [{"source": as_json_id(k.source), "target": as_json_id(k.target),
                       **copy.deepcopy(k.attrs)} for k in self.links],
        }  # fmt: skip

    def check_tasks(self) -> None:
        """Import every node's task.

        Raises:
            InvalidGraph: a task is missing or cannot be imported; names the node.
        """
        for node in self.nodes.values():
            try:
                resolve(node.task_type, node.identifier, node.attrs.get("task_generator"))
            except InvalidGraph as exc:
                raise InvalidGraph(f"node {display(node.id)!r}: {exc.message}",
                                   field="task_identifier", node=display(node.id)) from exc

    def check_inputs(self) -> None:
        """Every required input of a class task has a source: a default (or graph) input
        or a link that can carry it.

        Raises:
            InvalidGraph: naming the node and the input.
        """
        for node_id, node in self.nodes.items():
            if node.task_type != "class":
                continue
            needed = declared(resolve("class", node.identifier), "input_names")
            covered = set(node.default_inputs)
            for link in self.incoming(node_id):
                if link.map_all_data:
                    source = self.nodes[link.source]
                    if source.task_type != "class":
                        return  # anything may arrive
                    outputs = declared(resolve("class", source.identifier), "output_names")
                    covered |= set(outputs)
                covered |= {m.get("target_input") for m in link.data_mapping}
            missing = sorted(set(needed) - covered)
            if missing:
                raise InvalidGraph(f"node {display(node_id)!r}: required input "
                                   f"{', '.join(map(repr, missing))} has no source (no default, "
                                   "graph input or link)", field="inputs",
                                   node=display(node_id))  # fmt: skip
