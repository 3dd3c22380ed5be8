"""JSON documents: canonical encoding and the two patch formats PUT accepts."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson

from databunker.errors import BadRequest

JSONObject = dict[str, Any]


def encode(document: Any) -> bytes:
    """Canonical JSON (sorted keys) so equal documents encrypt from equal plaintext."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def decode(data: bytes) -> Any:
    return orjson.loads(data)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_change(document: JSONObject, change: Any) -> JSONObject:
    """A PUT body: an object is a merge patch, an array is an RFC 6902 JSON Patch."""
    if isinstance(change, dict):
        patched = merge_patch(document, change)
    elif isinstance(change, list):
        try:
            patched = jsonpatch.apply_patch(document, change)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise BadRequest("failed to apply JSON patch") from exc
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise BadRequest("bad JSON patch") from exc
    else:
        raise BadRequest("failed to decode request body")
    if not isinstance(patched, dict):
        raise BadRequest("the patched record must stay a JSON object")
    return patched
