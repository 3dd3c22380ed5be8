"""Captcha answers and images, without a database."""

from __future__ import annotations

import io
from collections import Counter

from PIL import Image

from databunker.services.captcha import ANSWER_DIGITS, HEIGHT, WIDTH, render
from databunker.services.context import SystemRandomness


def test_answers_are_six_random_digits() -> None:
    answers = [SystemRandomness().digits(ANSWER_DIGITS) for _ in range(200)]
    assert all(len(a) == ANSWER_DIGITS == 6 and a.isdigit() for a in answers)
    assert len(set(answers)) > 190
    # Every digit shows up, at every position: nothing is fixed.
    for position in range(ANSWER_DIGITS):
        assert len(Counter(a[position] for a in answers)) == 10


def test_the_image_is_a_png_of_the_expected_size() -> None:
    png = render("482913")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)
    # Not a blank canvas: digits and noise in many colours.
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 50


def test_the_same_answer_never_renders_the_same_image_twice() -> None:
    assert render("111111") != render("111111")


def test_nothing_dark_is_drawn_but_the_digits() -> None:
    # The ground stays pale, so no line or dot crosses a digit in ink that competes with it.
    ground = Image.open(io.BytesIO(render(""))).convert("L")
    assert min(ground.get_flattened_data()) >= 150
    digits = Image.open(io.BytesIO(render("482913"))).convert("L")
    dark = sum(1 for value in digits.get_flattened_data() if value < 100)
    assert dark > 300  # six digits in dark ink
