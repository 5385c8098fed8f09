"""Reading workflow graphs: JSON, YAML, inline, files and package resources; sub-graphs
flattened through their aliases (ids ``(parent, inner)``), parallel links merged,
default error handlers connected, and the graph checked. Every problem is an
``InvalidGraph`` that names the node or link.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workflow.errors import InvalidGraph
from workflow.graph.model import Graph, Link, Node, NodeId, as_id, display
from workflow.graph.tasks import TASK_TYPES

#: Node keys of old Ewoks graphs that stand for ``task_type`` + ``task_identifier``.
_OLD_KEYS = {"class": "class", "method": "method", "ppfmethod": "ppfmethod",
             "script": "script", "notebook": "notebook", "task": "generated"}  # fmt: skip
_EXTENSIONS = (".json", ".yaml", ".yml")
_SERIALIZE = "__ewoks_serialize__"


def load(source: Any, *, root_dir: str | Path | None = None) -> Graph:
    """Load, flatten and check a graph.

    Args:
        source: A ``Graph``, a node-link dict, a JSON string, a path to a ``.json``,
            ``.yaml`` or ``.yml`` file (the extension may be left out), or
            ``package.name`` for such a file inside an importable package.
        root_dir: Where relative paths (also of sub-graphs) are looked up first.

    Raises:
        InvalidGraph: the graph cannot be read or is invalid; the message says where.
    """
    if isinstance(source, Graph):
        return source.copy()
    raw, base = read(source, root_dir)
    return _build(raw, base, depth=0)


def read(source: Any, root_dir: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """The node-link dict ``source`` names, and the folder its relative paths are in."""
    base = Path(root_dir) if root_dir is not None else None
    if isinstance(source, dict):
        return _plain(copy.deepcopy(source)), base
    if isinstance(source, Path):
        source = str(source)
    if not isinstance(source, str):
        raise InvalidGraph(f"a graph is a dict, JSON, or a file or package resource name, not "
                           f"{type(source).__name__}", field="graph")  # fmt: skip
    if "{" in source and "}" in source:
        try:
            return _plain(json.loads(source)), base
        except json.JSONDecodeError as exc:
            raise InvalidGraph(f"the graph is not valid JSON: {exc}", field="graph") from exc
    path = _find(source, base)
    if path is not None:
        return _plain(_parse(path.read_text(), path.name)), path.parent
    resource = _resource(source)
    if resource is not None:
        return _plain(_parse(resource[0], resource[1])), None
    raise InvalidGraph(f"no graph file or package resource {source!r}", field="graph")


def _find(name: str, base: Path | None) -> Path | None:
    for folder in [base, Path.cwd()] if base is not None else [Path.cwd()]:
        assert folder is not None
        path = folder / name
        for candidate in (path, *(path.with_name(path.name + e) for e in _EXTENSIONS)):
            if candidate.is_file():
                return candidate
    return None


def _resource(name: str) -> tuple[str, str] | None:
    package, _, stem = name.rpartition(".")
    if not package or "/" in name:
        return None
    try:
        folder = importlib.resources.files(package)
    except (ImportError, TypeError, ValueError):
        return None
    for extension in _EXTENSIONS:
        entry = folder / f"{stem}{extension}"
        if entry.is_file():
            return entry.read_text(), entry.name
    return None


def _parse(text: str, name: str) -> Any:
    try:
        if name.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidGraph(f"{name} is neither JSON nor YAML: {exc}", field="graph") from exc


def _plain(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidGraph(f"a graph is an object with graph, nodes and links, not "
                           f"{type(raw).__name__}", field="graph")  # fmt: skip
    raw.pop(_SERIALIZE, None)
    raw.pop("directed", None)
    raw.pop("multigraph", None)
    return raw


@dataclass
class _Alias:
    """Where a link to or from a sub-graph alias goes, with default link attributes."""

    node: NodeId
    link_attributes: dict[str, Any]


MAX_DEPTH = 20


def _build(raw: dict[str, Any], base: Path | None, depth: int) -> Graph:
    if depth > MAX_DEPTH:
        raise InvalidGraph(f"sub-graphs nest deeper than {MAX_DEPTH} levels", field="graph")
    attrs = dict(raw.get("graph") or {})
    nodes = [_node(item, n) for n, item in enumerate(_listed(raw, "nodes"))]
    ids = [node.id for node in nodes]
    seen: set[NodeId] = set()
    for n, node_id in enumerate(ids):
        if node_id in seen:
            raise InvalidGraph(f"nodes[{n}]: the id {display(node_id)!r} is used twice",
                               field=f"nodes[{n}].id")  # fmt: skip
        seen.add(node_id)
    links = [_link(item, n, seen) for n, item in enumerate(_listed(raw, "links"))]
    inner: dict[NodeId, Graph] = {}
    flat: list[Node] = []
    for node in nodes:
        if node.task_type != "graph":
            flat.append(node)
            continue
        sub_raw, sub_base = read(node.identifier, base)
        sub = _build(sub_raw, sub_base, depth + 1)
        inner[node.id] = sub
        copied: dict[str, Any] = {k: node.attrs[k] for k in ("default_inputs", "force_start_node",
                                                             "conditions_else_value",
                                                             "default_error_node")
                                  if k in node.attrs}  # fmt: skip
        targets = {a.node for aliases in sub.attrs.get("_inputs", {}).values() for a in aliases}
        for sub_node in sub.nodes.values():
            inner_attrs = dict(sub_node.attrs)
            if sub_node.id in targets:
                inner_attrs.update(copy.deepcopy(copied))
            flat.append(Node((node.id, sub_node.id), inner_attrs))
    flat_links: list[Link] = []
    for sub_id, sub in inner.items():
        flat_links += [Link((sub_id, k.source), (sub_id, k.target), k.attrs) for k in sub.links]
    for n, link in enumerate(links):
        flat_links += _through_subgraphs(link, n, inner, {node.id: node for node in flat})
    for name in ("input_nodes", "output_nodes"):
        attrs[f"_{name[:-6]}s"] = _aliases(attrs.get(name) or [], inner, name)
    merged = _merge_parallel(flat_links)
    graph = Graph(attrs, flat, merged)
    _connect_error_handlers(graph)
    _check(graph)
    if depth == 0:
        graph.attrs.pop("_inputs", None)
        graph.attrs.pop("_outputs", None)
    return graph


def _listed(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidGraph(f"{key} is a list of objects", field=key)
    return items


def _node(item: dict[str, Any], n: int) -> Node:
    where = f"nodes[{n}]"
    if "id" not in item:
        raise InvalidGraph(f"{where} has no id", field=f"{where}.id")
    attrs = {k: v for k, v in item.items() if k != "id"}
    old = [k for k in _OLD_KEYS if k in attrs]
    if old and "task_type" not in attrs:
        if len(old) > 1:
            raise InvalidGraph(f"{where} names more than one task: {old}", field=where)
        attrs["task_type"], attrs["task_identifier"] = _OLD_KEYS[old[0]], attrs.pop(old[0])
    if "ppfport" in attrs and "task_type" not in attrs:
        attrs.pop("ppfport")
        attrs["task_type"] = "ppfport"
    kind = attrs.get("task_type")
    if kind not in (*TASK_TYPES, "graph", "notebook"):
        raise InvalidGraph(f"{where}: task_type {kind!r} is not one of "
                           f"{', '.join((*TASK_TYPES, 'graph'))}", field=f"{where}.task_type")
    if kind == "notebook":
        raise InvalidGraph(f"{where}: notebook tasks are not supported", field=f"{where}.task_type")
    if kind == "ppfport":
        if attrs.get("task_identifier") is not None:
            raise InvalidGraph(f"{where}: a ppfport has no task_identifier",
                               field=f"{where}.task_identifier")  # fmt: skip
    elif not attrs.get("task_identifier"):
        raise InvalidGraph(f"{where}: task_identifier is missing", field=f"{where}.task_identifier")
    defaults = attrs.get("default_inputs") or []
    if not isinstance(defaults, list) or not all(isinstance(d, dict) and "name" in d
                                                 for d in defaults):  # fmt: skip
        raise InvalidGraph(f"{where}: default_inputs is a list of {{name, value}}",
                           field=f"{where}.default_inputs")  # fmt: skip
    return Node(as_id(item["id"]), attrs)


def _link(item: dict[str, Any], n: int, ids: set[NodeId]) -> Link:
    where = f"links[{n}]"
    for end in ("source", "target"):
        if end not in item:
            raise InvalidGraph(f"{where} has no {end}", field=f"{where}.{end}")
        if as_id(item[end]) not in ids:
            raise InvalidGraph(f"{where}: {end} {display(as_id(item[end]))!r} is not a node",
                               field=f"{where}.{end}")  # fmt: skip
    attrs = {k: v for k, v in item.items() if k not in ("source", "target")}
    if attrs.get("map_all_data") and attrs.get("data_mapping"):
        raise InvalidGraph(f"{where}: map_all_data and data_mapping exclude each other",
                           field=f"{where}.map_all_data")  # fmt: skip
    if attrs.get("on_error") and attrs.get("conditions"):
        raise InvalidGraph(f"{where}: on_error and conditions exclude each other",
                           field=f"{where}.on_error")  # fmt: skip
    for m, mapping in enumerate(attrs.get("data_mapping") or []):
        if not isinstance(mapping, dict) or mapping.get("target_input") is None:
            raise InvalidGraph(f"{where}.data_mapping[{m}] needs a target_input",
                               field=f"{where}.data_mapping[{m}]")  # fmt: skip
    for m, condition in enumerate(attrs.get("conditions") or []):
        if not isinstance(condition, dict) or "source_output" not in condition \
                or "value" not in condition:  # fmt: skip
            raise InvalidGraph(f"{where}.conditions[{m}] needs a source_output and a value",
                               field=f"{where}.conditions[{m}]")  # fmt: skip
    return Link(as_id(item["source"]), as_id(item["target"]), attrs)


def _aliases(entries: list[dict[str, Any]], inner: dict[NodeId, Graph], name: str
             ) -> dict[Any, list[_Alias]]:  # fmt: skip
    """A graph's ``input_nodes``/``output_nodes`` resolved to its flattened node ids."""
    out: dict[Any, list[_Alias]] = {}
    for n, entry in enumerate(entries):
        node = as_id(entry.get("node"))
        attrs = dict(entry.get("link_attributes") or {})
        if node in inner:
            resolved = _resolve(inner, node, entry.get("sub_node"), f"_{name[:-6]}s",
                                f"graph.{name}[{n}]")  # fmt: skip
            targets = [_Alias(a.node, {**a.link_attributes, **attrs}) for a in resolved]
        else:
            targets = [_Alias(node, attrs)]
        out.setdefault(as_id(entry.get("id")), []).extend(targets)
    return out


def _resolve(inner: dict[NodeId, Graph], graph_node: NodeId, name: Any, kind: str, where: str
             ) -> list[_Alias]:  # fmt: skip
    """The flattened nodes that ``name`` (an alias or a node id) means inside the
    sub-graph of ``graph_node``."""
    sub = inner[graph_node]
    if name is None:
        raise InvalidGraph(f"{where}: a link to or from the sub-graph {display(graph_node)!r} "
                           f"needs sub_{'target' if kind == '_inputs' else 'source'}",
                           field=where)  # fmt: skip
    aliases = sub.attrs.get(kind, {}).get(as_id(name))
    if aliases:
        return [_Alias((graph_node, a.node), a.link_attributes) for a in aliases]
    if as_id(name) in sub.nodes:
        return [_Alias((graph_node, as_id(name)), {})]
    raise InvalidGraph(f"{where}: {display(as_id(name))!r} is neither an alias nor a node of "
                       f"the sub-graph {display(graph_node)!r}", field=where)  # fmt: skip


def _through_subgraphs(link: Link, n: int, inner: dict[NodeId, Graph],
                       flat: dict[NodeId, Node]) -> list[Link]:  # fmt: skip
    where = f"links[{n}]"
    attrs = {k: v for k, v in link.attrs.items()
             if k not in ("sub_source", "sub_target", "sub_target_attributes")}  # fmt: skip
    sources = [_Alias(link.source, {})]
    if link.source in inner:
        sources = _resolve(inner, link.source, link.attrs.get("sub_source"), "_outputs", where)
    targets = [_Alias(link.target, {})]
    if link.target in inner:
        targets = _resolve(inner, link.target, link.attrs.get("sub_target"), "_inputs", where)
        for target in targets:
            flat[target.node].attrs.update(copy.deepcopy(link.attrs.get("sub_target_attributes")
                                                         or {}))  # fmt: skip
    return [Link(s.node, t.node, {**s.link_attributes, **t.link_attributes, **attrs})
            for s in sources for t in targets]  # fmt: skip


def _merge_parallel(links: list[Link]) -> list[Link]:
    """One link per source and target: lists joined, equal values kept, others refused."""
    merged: dict[tuple[NodeId, NodeId], Link] = {}
    for link in links:
        key = (link.source, link.target)
        if key not in merged:
            merged[key] = Link(link.source, link.target, dict(link.attrs))
            continue
        into = merged[key].attrs
        for name, value in link.attrs.items():
            if name not in into:
                into[name] = value
            elif isinstance(value, list) and isinstance(into[name], list):
                into[name] = into[name] + value
            elif into[name] != value:
                raise InvalidGraph(f"two links from {display(link.source)!r} to "
                                   f"{display(link.target)!r} disagree on {name}",
                                   field="links")  # fmt: skip
    return list(merged.values())


def _connect_error_handlers(graph: Graph) -> None:
    """Link every node without an error link of its own to the ``default_error_node``s."""
    handlers = [n for n, node in graph.nodes.items() if node.attrs.pop("default_error_node", False)]
    if not handlers:
        return
    below: set[NodeId] = set(handlers)
    for handler in handlers:
        below |= graph.descendants(handler)
    added = []
    for handler in handlers:
        attrs = dict(graph.nodes[handler].attrs.pop("default_error_attributes", None)
                     or {"map_all_data": True})  # fmt: skip
        attrs["on_error"] = True
        for node_id in list(graph.nodes):
            if node_id in below or any(k.on_error for k in graph.outgoing(node_id)):
                continue
            added.append(Link(node_id, handler, dict(attrs)))
    graph.add_links(added)


def _check(graph: Graph) -> None:
    """Refuse required links that collide, and cycles that nothing can leave: a cycle of
    links none of which is conditional runs for ever."""
    for node_id in graph.nodes:
        written: dict[Any, NodeId] = {}
        for link in graph.incoming(node_id):
            if not graph.required(link):
                continue
            for mapping in link.data_mapping:
                name = mapping.get("target_input")
                if name in written and written[name] != link.source:
                    raise InvalidGraph(f"node {display(node_id)!r}: input {name!r} comes from both "
                                       f"{display(written[name])!r} and {display(link.source)!r}",
                                       field="links", node=display(node_id))  # fmt: skip
                written[name] = link.source
    cycle = graph.cycle(k for k in graph.links if not k.conditional)
    if cycle:
        shown = " -> ".join(display(n) for n in (*cycle, cycle[0]))
        raise InvalidGraph(f"the cycle {shown} has no conditional link, so it never ends",
                           field="links")  # fmt: skip
