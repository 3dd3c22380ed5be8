"""Server-side captchas for the passwordless login.

A captcha is a random id handed to the browser and a random 6-digit answer kept on the
server. Only a keyed hash of the id is stored, and the answer is sealed under a service key
bound to that hash, so neither the id nor a database dump reveals an answer (unlike the
original's captcha token, which was the answer encrypted under a fixed nonce). A captcha
lives two minutes and is spent by the first prelogin that presents it, right or wrong.
"""

from __future__ import annotations

import hmac
import io
import secrets
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from databunker.crypto import DataKey, DecryptionError, is_uuid, value_context
from databunker.errors import NotFound
from databunker.services.context import Work
from databunker.storage import login as captcha_rows

CAPTCHA_SECONDS = 120
ANSWER_DIGITS = 6
WIDTH, HEIGHT = 200, 80


@dataclass(frozen=True, slots=True)
class IssuedCaptcha:
    """A new captcha: the id the browser shows its image by and presents with its answer."""

    captcha_id: str


def _id_hash(work: Work, captcha_id: str) -> bytes:
    return work.keyring.hash_secret("captcha", captcha_id)


def _key(work: Work) -> DataKey:
    # Associated data below separates captcha answers from the identities under this key.
    return work.keyring.service_key("identity")


def _context(id_hash: bytes) -> bytes:
    return value_context("captchas", "answer", id_hash.hex(), "captcha")


def create_captcha(work: Work) -> IssuedCaptcha:
    captcha_id = work.random.token()
    id_hash = _id_hash(work, captcha_id)
    sealed = _key(work).encrypt(work.random.digits(ANSWER_DIGITS).encode(), _context(id_hash))
    captcha_rows.insert_captcha(
        work.conn, id_hash=id_hash, sealed_answer=sealed, expires=work.now + CAPTCHA_SECONDS
    )
    return IssuedCaptcha(captcha_id)


def _open_answer(id_hash: bytes, sealed: bytes, key: DataKey) -> str | None:
    try:
        return key.decrypt(sealed, _context(id_hash)).decode()
    except (DecryptionError, UnicodeDecodeError):
        return None


def live_answer(work: Work, captcha_id: str) -> str | None:
    """The answer of a live captcha (what its image shows), or None."""
    if not is_uuid(captcha_id):
        return None
    id_hash = _id_hash(work, captcha_id)
    sealed = captcha_rows.find_captcha(work.conn, id_hash, work.now)
    return _open_answer(id_hash, sealed, _key(work)) if sealed is not None else None


def captcha_image(work: Work, captcha_id: str) -> bytes:
    """The PNG of a live captcha's answer; NotFound for an unknown, spent or expired id."""
    answer = live_answer(work, captcha_id)
    if answer is None:
        raise NotFound()
    return render(answer)


def spend_captcha(work: Work, captcha_id: str, answer: str) -> bool:
    """Spend the captcha whatever the answer; true only if it was live and the answer right."""
    if not is_uuid(captcha_id):
        return False
    id_hash = _id_hash(work, captcha_id)
    sealed = captcha_rows.take_captcha(work.conn, id_hash, work.now)
    expected = _open_answer(id_hash, sealed, _key(work)) if sealed is not None else None
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode(), answer.encode("utf-8", "surrogatepass"))


def render(answer: str) -> bytes:
    """Draw the digits jittered and rotated over noise, then blur lightly."""
    rng = secrets.SystemRandom()
    image = Image.new("RGB", (WIDTH, HEIGHT), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        points = [(rng.randrange(WIDTH), rng.randrange(HEIGHT)) for _ in range(2)]
        draw.line(points, fill=_colour(rng, 120, 200), width=rng.choice((1, 2)))
    font = ImageFont.load_default(size=40)
    step = WIDTH // (len(answer) + 1)
    for position, digit in enumerate(answer):
        glyph = Image.new("RGBA", (50, 60), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((10, 5), digit, font=font, fill=_colour(rng, 10, 90))
        glyph = glyph.rotate(rng.uniform(-30, 30), resample=Image.Resampling.BICUBIC)
        x = step // 2 + position * step + rng.randint(-4, 4)
        y = rng.randint(0, HEIGHT - 62)
        image.paste(glyph, (x, y), glyph)
    for _ in range(WIDTH * HEIGHT // 25):
        draw.point((rng.randrange(WIDTH), rng.randrange(HEIGHT)), fill=_colour(rng, 60, 220))
    for _ in range(3):
        points = [(rng.randrange(WIDTH), rng.randrange(HEIGHT)) for _ in range(3)]
        draw.line(points, fill=_colour(rng, 40, 120), width=1)
    out = io.BytesIO()
    image.filter(ImageFilter.SMOOTH).save(out, format="PNG")
    return out.getvalue()


def _colour(rng: secrets.SystemRandom, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def purge_expired_captchas(work: Work) -> int:
    return captcha_rows.purge_expired_captchas(work.conn, work.now)
