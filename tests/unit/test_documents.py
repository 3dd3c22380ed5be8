"""Merge patch (RFC 7386 examples), JSON Patch and canonical encoding."""

from __future__ import annotations

from typing import Any

import pytest

from databunker.errors import BadRequest
from databunker.services.documents import apply_change, decode, encode, merge_patch

# The examples of RFC 7386, appendix A.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386)
def test_merge_patch_follows_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_change_its_inputs() -> None:
    target = {"a": {"b": 1}}
    patch = {"a": {"c": [1]}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"c": [1]}}


def test_json_patch_array_is_applied() -> None:
    doc = {"name": "Ann", "tags": ["a"]}
    patched = apply_change(
        doc,
        [
            {"op": "test", "path": "/name", "value": "Ann"},
            {"op": "replace", "path": "/name", "value": "Bob"},
            {"op": "add", "path": "/tags/-", "value": "b"},
        ],
    )
    assert patched == {"name": "Bob", "tags": ["a", "b"]}
    assert doc == {"name": "Ann", "tags": ["a"]}


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "test", "path": "/name", "value": "Bob"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "explode", "path": "/name"}],
        [{"path": "/name"}],
        ["not an operation"],
        [{"op": "replace", "path": "", "value": [1]}],
    ],
)
def test_bad_json_patches_are_bad_requests(patch: list[Any]) -> None:
    with pytest.raises(BadRequest):
        apply_change({"name": "Ann"}, patch)


def test_change_must_be_object_or_array() -> None:
    with pytest.raises(BadRequest):
        apply_change({"name": "Ann"}, "text")


def test_encoding_is_canonical() -> None:
    assert encode({"b": 1, "a": {"d": 2, "c": 3}}) == b'{"a":{"c":3,"d":2},"b":1}'
    assert decode(encode({"x": [1, "é"]})) == {"x": [1, "é"]}
