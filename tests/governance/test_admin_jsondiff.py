"""The admin's JSON diff: leaf paths, changed ones separated from unchanged ones."""

from __future__ import annotations

from governance.admin.jsondiff import ADDED, CHANGED, REMOVED, json_diff


def test_changed_added_and_removed_leaves_are_listed_by_path():
    old = '{"a": 1, "user": {"id": "u-1", "tags": ["x", "y"]}, "gone": true}'
    new = {"a": 1, "user": {"id": "k1:abc", "tags": ["x"]}, "extra": None}
    diff = json_diff(old, new)
    by_path = {row.path: row for row in diff.changed}
    assert by_path["user.id"].status == CHANGED
    assert (by_path["user.id"].old, by_path["user.id"].new) == ('"u-1"', '"k1:abc"')
    assert by_path["user.tags[1]"].status == REMOVED
    assert by_path["gone"].status == REMOVED
    assert by_path["extra"].status == ADDED
    assert [row.path for row in diff.unchanged] == ["a", "user.tags[0]"]


def test_an_empty_side_makes_every_leaf_added():
    diff = json_diff("", '{"a": {"b": 2}}')
    assert [(row.path, row.status) for row in diff.changed] == [("a.b", ADDED)]
    assert json_diff("{}", "{}").changed == []
