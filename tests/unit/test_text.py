"""Text kept in clear: which characters it refuses, and how messages escape them."""

from __future__ import annotations

import pytest

from databunker.errors import BadRequest
from databunker.services.text import clean_text, escape_controls, has_control_characters

CONTROLS = [chr(code) for code in range(0x20)] + ["\x7f"]
LINE_BREAKS = ["\t", "\n", "\r"]


@pytest.mark.parametrize("control", CONTROLS)
def test_one_line_text_refuses_every_control_character(control: str) -> None:
    assert has_control_characters(f"a{control}b")
    with pytest.raises(BadRequest) as refused:
        clean_text("partner", f"a{control}b")
    assert refused.value.message == "invalid character in partner"
    assert refused.value.status_code == 400


@pytest.mark.parametrize("control", sorted(set(CONTROLS) - set(LINE_BREAKS)))
def test_free_text_refuses_control_characters_other_than_tab_and_line_breaks(
    control: str,
) -> None:
    with pytest.raises(BadRequest, match=r"^invalid character in fulldesc$"):
        clean_text("fulldesc", f"a{control}b", multiline=True)


@pytest.mark.parametrize("text", ["a\tb", "line\nline", "line\r\nline", "\t\r\n"])
def test_free_text_keeps_tabs_and_line_breaks(text: str) -> None:
    assert clean_text("fulldesc", text, multiline=True) == text


@pytest.mark.parametrize(
    "text", ["", "plain", "Ünïcödé ✓ 中文", "\u0080\u009f", "\u2028\u200b", "\ufeff", "😀"]
)
def test_other_characters_are_kept(text: str) -> None:
    assert not has_control_characters(text)
    assert clean_text("title", text) == text
    assert escape_controls(text) == text


def test_escape_controls_writes_json_escapes() -> None:
    assert escape_controls("$['a\x00b']\x1b\x7f\n") == "$['a\\u0000b']\\u001b\\u007f\\u000a"
