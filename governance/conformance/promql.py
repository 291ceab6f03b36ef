"""PromQL metric extraction: the metric names an expression selects, from a real PromQL parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import promql_parser


class PromQLError(ValueError):
    """A PromQL expression that the parser rejects; ``message`` is the parser's explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PromQLReferences:
    """The metric names an expression selects, and selectors whose metric cannot be known.

    A selector is *unresolvable* when its metric name is not fixed: ``{__name__=~"foo_.*"}``,
    ``{__name__!="x"}`` or no name at all (``{job="api"}``).
    """

    names: frozenset[str]
    unresolvable: tuple[str, ...] = ()


def promql_references(expr: str) -> PromQLReferences:
    """Parse ``expr`` and collect the metric names of all its vector and matrix selectors.

    Raises :class:`PromQLError` when the expression does not parse.
    """
    if not isinstance(expr, str):
        raise PromQLError(f"expression must be a string, got {type(expr).__name__}")
    try:
        tree = promql_parser.parse(expr)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # ValueError, or a pyo3 PanicException from the Rust side
        raise PromQLError(str(exc) or type(exc).__name__) from exc
    names: set[str] = set()
    unresolvable: list[str] = []

    def selector(node: Any) -> None:
        found, unknown = _selector_names(node)
        names.update(found)
        if unknown:
            unresolvable.append(_promql_text(node))

    _walk(tree, selector)
    return PromQLReferences(frozenset(names), tuple(dict.fromkeys(unresolvable)))


def promql_metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` references (unresolvable ``__name__`` regexes are left out).

    Raises :class:`PromQLError` on a parse failure.
    """
    return set(promql_references(expr).names)


def _walk(tree: Any, on_selector: Callable[[Any], None]) -> None:
    """Depth-first walk of a promql_parser AST, calling ``on_selector`` on every VectorSelector.

    Every node type of the parser is handled explicitly; an unknown one is an error rather than
    a subtree silently skipped (which would hide the metrics below it).
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, str | int | float):
            continue  # scalar parameters (older parser versions hand some out as plain values)
        if isinstance(node, promql_parser.VectorSelector):
            on_selector(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            stack.append(node.vector_selector)
        elif isinstance(node, promql_parser.AggregateExpr):
            stack.extend((node.param, node.expr))
        elif isinstance(node, promql_parser.BinaryExpr):
            stack.extend((node.rhs, node.lhs))
        elif isinstance(
            node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
        ):
            stack.append(node.expr)
        elif isinstance(node, promql_parser.Call):
            stack.extend(reversed(list(node.args)))
        elif isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
            continue
        else:
            raise PromQLError(f"unsupported PromQL syntax node {type(node).__name__}")


def _selector_names(node: Any) -> tuple[set[str], bool]:
    """(metric names, whether some alternative has no fixed name) of one VectorSelector."""
    if node.name:
        return {node.name}, False
    matchers = node.matchers
    groups = list(getattr(matchers, "or_matchers", None) or []) or [matchers.matchers]
    names: set[str] = set()
    unknown = False
    for group in groups:
        equal = {
            m.value for m in group if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
        }
        names |= equal
        unknown = unknown or not equal
    return names, unknown


def _promql_text(node: Any) -> str:
    try:
        return node.prettify()
    except Exception:  # pragma: no cover - defensive: fall back to the node's own rendering
        return str(node)
