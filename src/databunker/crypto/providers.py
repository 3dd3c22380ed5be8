"""Key providers: where the master key comes from, and how it is kept between starts.

One ``KeyProvider`` Protocol, three implementations chosen by configuration:

- ``EnvironmentKeyProvider``: the operator keeps the key (``DATABUNKER_MASTERKEY`` or the
  file ``DATABUNKER_MASTERKEY_FILE`` names); nothing about it is stored.
- ``ShamirKeyProvider``: the key is split into SLIP-39 shares (``shamir-mnemonic``), a
  threshold of which rebuild it; only the threshold and the share count are stored. A vault
  protected so starts sealed and is unsealed with shares (``ShareCollector``).
- ``AwsKmsKeyProvider``: the key is stored encrypted by an AWS KMS key, with an encryption
  context naming this vault, and decrypted by KMS at start. Standard AWS settings apply
  (``AWS_REGION``, credentials, ``AWS_ENDPOINT_URL``), read by boto3 itself.

``protect`` turns a master key into what is stored (``ProtectedKey.stored``, public values
for the database's ``meta`` table) and what the operator is shown once (``printed``).
Every failure is a ``KeyProviderError`` with a message fit for an operator: never a key.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import shamir_mnemonic

from databunker.crypto.keys import MasterKey

PROVIDER = "key_provider"
SHAMIR_THRESHOLD = "shamir_threshold"
SHAMIR_SHARES = "shamir_shares"
KMS_KEY = "kms_key"
KMS_CIPHERTEXT = "kms_master_key"
KMS_PREFIX = "aws-kms:"
VAULT_CONTEXT = "databunker-vault"
MAX_SHARES = 16
SHARE_VARIABLE = "DATABUNKER_SHARE_{}"


class KeyProviderError(Exception):
    """The master key cannot be obtained or protected as configured."""


@dataclass(frozen=True)
class ProtectedKey:
    """A master key as a provider keeps it: ``stored`` goes to the database (no secret),
    ``printed`` is shown to the operator once."""

    stored: dict[str, str]
    printed: list[str] = field(repr=False)


class KeyProvider(Protocol):
    kind: str

    def protect(self, master: MasterKey, vault_id: str) -> ProtectedKey: ...

    def describe(self, stored: Mapping[str, str]) -> str:
        """What ``keys status`` shows: the provider and its public parameters."""
        ...


class EnvironmentKeyProvider:
    """The key from the environment or a file, as the operator keeps it."""

    kind = "env"

    def __init__(self, master_key_hex: str | None = None) -> None:
        self._hex = master_key_hex

    def master_key(self) -> MasterKey:
        if not self._hex:
            raise KeyProviderError(
                "DATABUNKER_MASTERKEY (or DATABUNKER_MASTERKEY_FILE) must be set to the key "
                "printed by `databunker init`"
            )
        try:
            return MasterKey.from_hex(self._hex)
        except ValueError as exc:
            raise KeyProviderError(f"DATABUNKER_MASTERKEY: {exc}") from exc

    def protect(self, master: MasterKey, vault_id: str) -> ProtectedKey:
        return ProtectedKey({PROVIDER: self.kind}, [f"DATABUNKER_MASTERKEY={master.hex()}"])

    def describe(self, stored: Mapping[str, str]) -> str:
        return "environment (DATABUNKER_MASTERKEY or DATABUNKER_MASTERKEY_FILE)"


class ShamirKeyProvider:
    """The key split into ``shares`` SLIP-39 shares, any ``threshold`` of which rebuild it."""

    kind = "shamir"

    def __init__(self, shares: int, threshold: int) -> None:
        if not 2 <= shares <= MAX_SHARES:
            raise KeyProviderError(f"--shares must be between 2 and {MAX_SHARES}")
        if not 2 <= threshold <= shares:
            raise KeyProviderError("--threshold must be at least 2 and at most --shares")
        self.shares = shares
        self.threshold = threshold

    def protect(self, master: MasterKey, vault_id: str) -> ProtectedKey:
        groups = shamir_mnemonic.generate_mnemonics(
            1, [(self.threshold, self.shares)], master.raw, b"", True, 0
        )
        printed = [
            f"{SHARE_VARIABLE.format(number)}={'-'.join(mnemonic.split())}"
            for number, mnemonic in enumerate(groups[0], start=1)
        ]
        stored = {
            PROVIDER: self.kind,
            SHAMIR_THRESHOLD: str(self.threshold),
            SHAMIR_SHARES: str(self.shares),
        }
        return ProtectedKey(stored, printed)

    def describe(self, stored: Mapping[str, str]) -> str:
        return (
            f"Shamir shares ({stored.get(SHAMIR_THRESHOLD, '?')} of "
            f"{stored.get(SHAMIR_SHARES, '?')})"
        )


class MalformedShare(KeyProviderError):
    def __init__(self) -> None:
        super().__init__("malformed share")


class SharesDoNotMatch(KeyProviderError):
    def __init__(self) -> None:
        super().__init__("shares do not match this vault")


_SHARE_SEPARATORS = re.compile(r"[\s\-]+")


def parse_share(text: str) -> str:
    """A share as ``init`` printed it (words joined by ``-``, with or without the
    ``DATABUNKER_SHARE_<n>=`` prefix) or as words; its checksum is verified."""
    text = text.strip()
    if "=" in text:
        text = text.split("=", 1)[1]
    words = _SHARE_SEPARATORS.sub(" ", text).strip().lower()
    try:
        shamir_mnemonic.Share.from_mnemonic(words)
    except (shamir_mnemonic.MnemonicError, ValueError, KeyError) as exc:
        raise MalformedShare() from exc
    return words


def combine_shares(shares: Iterable[str]) -> MasterKey:
    """The master key the (parsed) shares rebuild; ``SharesDoNotMatch`` if they do not."""
    try:
        raw = shamir_mnemonic.combine_mnemonics(list(shares), b"")
        return MasterKey(raw)
    except (shamir_mnemonic.MnemonicError, ValueError) as exc:
        raise SharesDoNotMatch() from exc


class ShareCollector:
    """Shares given one by one until ``threshold`` distinct ones are in."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._shares: dict[str, str] = {}

    @property
    def progress(self) -> int:
        return len(self._shares)

    def add(self, text: str) -> MasterKey | None:
        """Count one share; the rebuilt key once the threshold is reached (the collector is
        then empty again, whether the shares matched or not)."""
        words = parse_share(text)
        self._shares.setdefault(words, words)
        if len(self._shares) < self.threshold:
            return None
        shares, self._shares = list(self._shares.values()), {}
        return combine_shares(shares)

    def reset(self) -> None:
        self._shares = {}


class AwsKmsKeyProvider:
    """The key stored encrypted by an AWS KMS key; ``key`` is ``aws-kms:<key id or ARN>``."""

    kind = "aws-kms"

    def __init__(self, key: str, client: Any = None) -> None:
        if not key.startswith(KMS_PREFIX) or not key.removeprefix(KMS_PREFIX).strip():
            raise KeyProviderError("the KMS key must be given as aws-kms:<key id or ARN>")
        self.key_id = key.removeprefix(KMS_PREFIX).strip()
        self._client = client

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            try:
                self._client = boto3.client("kms")
            except Exception as exc:  # botocore: no region, bad endpoint, ...
                raise KeyProviderError(f"AWS KMS: {_aws_problem(exc)}") from exc
        return self._client

    def protect(self, master: MasterKey, vault_id: str) -> ProtectedKey:
        try:
            answer = self._kms().encrypt(
                KeyId=self.key_id,
                Plaintext=master.raw,
                EncryptionContext={VAULT_CONTEXT: vault_id},
            )
        except KeyProviderError:
            raise
        except Exception as exc:
            raise KeyProviderError(f"AWS KMS cannot encrypt: {_aws_problem(exc)}") from exc
        stored = {
            PROVIDER: self.kind,
            KMS_KEY: self.key_id,
            KMS_CIPHERTEXT: base64.b64encode(answer["CiphertextBlob"]).decode("ascii"),
        }
        return ProtectedKey(
            stored, [f"# master key: stored encrypted by AWS KMS key {self.key_id}"]
        )

    def master_key(self, stored: Mapping[str, str], vault_id: str) -> MasterKey:
        ciphertext = stored.get(KMS_CIPHERTEXT)
        if stored.get(PROVIDER) != self.kind or not ciphertext:
            raise KeyProviderError("this vault's master key is not kept by AWS KMS")
        try:
            answer = self._kms().decrypt(
                KeyId=self.key_id,
                CiphertextBlob=base64.b64decode(ciphertext),
                EncryptionContext={VAULT_CONTEXT: vault_id},
            )
            return MasterKey(bytes(answer["Plaintext"]))
        except KeyProviderError:
            raise
        except Exception as exc:
            raise KeyProviderError(
                f"AWS KMS cannot decrypt this vault's master key with {self.key_id}: "
                f"{_aws_problem(exc)}"
            ) from exc

    def describe(self, stored: Mapping[str, str]) -> str:
        return f"AWS KMS ({KMS_PREFIX}{stored.get(KMS_KEY, '?')})"


def _aws_problem(exc: Exception) -> str:
    """One line naming the AWS error (its code), never a key or a credential."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def describe(stored: Mapping[str, str]) -> str:
    """The provider in use, as ``keys status`` and ``GET /v1/sys/keys`` show it."""
    kind = stored.get(PROVIDER, EnvironmentKeyProvider.kind)
    if kind == ShamirKeyProvider.kind:
        return ShamirKeyProvider.describe(ShamirKeyProvider(2, 2), stored)
    if kind == AwsKmsKeyProvider.kind:
        return AwsKmsKeyProvider(f"{KMS_PREFIX}{stored.get(KMS_KEY, '?')}").describe(stored)
    return EnvironmentKeyProvider().describe(stored)
