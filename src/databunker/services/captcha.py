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

from PIL import Image, ImageDraw, ImageFont

from databunker.crypto import DataKey, DecryptionError, is_uuid, value_context
from databunker.errors import NotFound
from databunker.services.context import Work
from databunker.storage import login as captcha_rows

CAPTCHA_SECONDS = 120
ANSWER_DIGITS = 6
WIDTH, HEIGHT = 240, 80


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
    """Draw the digits dark and large, each rotated, sized and placed at random on a pale
    mottled ground. Nothing is drawn over the digits (no crossing lines): the ground is
    light enough that every digit keeps a strong contrast, while the varying shapes and the
    texture behind them still keep simple machine reading from segmenting the picture."""
    rng = secrets.SystemRandom()
    image = Image.new("RGB", (WIDTH, HEIGHT), (248, 248, 244))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        radius = rng.randint(6, 22)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_colour(rng, 205, 240))
    for _ in range(WIDTH * HEIGHT // 30):
        draw.point((rng.randrange(WIDTH), rng.randrange(HEIGHT)), fill=_colour(rng, 185, 235))
    step = WIDTH // (len(answer) + 1) if answer else WIDTH
    for position, digit in enumerate(answer):
        font = ImageFont.load_default(size=rng.randint(38, 48))
        glyph = Image.new("RGBA", (60, 70), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((12, 4), digit, font=font, fill=_colour(rng, 15, 70))
        glyph = glyph.rotate(rng.uniform(-22, 22), resample=Image.Resampling.BICUBIC)
        x = step // 2 + position * step + rng.randint(-3, 3)
        y = rng.randint(0, HEIGHT - 70)
        image.paste(glyph, (x, y), glyph)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _colour(rng: secrets.SystemRandom, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def purge_expired_captchas(work: Work) -> int:
    return captcha_rows.purge_expired_captchas(work.conn, work.now)
