"""The AWS KMS provider against moto's KMS server: the master key is stored encrypted, bound
to the vault by the encryption context, and opened only by the same key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from databunker.crypto import MasterKey
from databunker.crypto.providers import AwsKmsKeyProvider, KeyProviderError
from support.kms import kms_client, kms_server, new_kms_key


@pytest.fixture(scope="module")
def kms_env() -> Iterator[dict[str, str]]:
    with kms_server() as env:
        yield env


def test_the_master_key_round_trips_through_kms_and_is_never_stored_in_clear(
    kms_env: dict[str, str],
) -> None:
    key = new_kms_key(kms_env)
    provider = AwsKmsKeyProvider(f"aws-kms:{key}", kms_client(kms_env))
    master = MasterKey.generate()

    protected = provider.protect(master, "vault-1")

    assert protected.stored["key_provider"] == "aws-kms"
    assert protected.stored["kms_key"] == key
    assert master.hex() not in str(protected.stored)
    assert all(master.hex() not in line for line in protected.printed)
    assert provider.master_key(protected.stored, "vault-1").hex() == master.hex()


def test_another_vault_or_another_kms_key_cannot_open_it(kms_env: dict[str, str]) -> None:
    client = kms_client(kms_env)
    key, other = new_kms_key(kms_env), new_kms_key(kms_env)
    stored = AwsKmsKeyProvider(f"aws-kms:{key}", client).protect(MasterKey.generate(), "v1").stored

    with pytest.raises(KeyProviderError, match="cannot decrypt"):
        AwsKmsKeyProvider(f"aws-kms:{key}", client).master_key(stored, "another-vault")
    with pytest.raises(KeyProviderError, match="cannot decrypt"):
        AwsKmsKeyProvider(f"aws-kms:{other}", client).master_key(stored, "v1")


def test_an_unknown_kms_key_is_a_clear_refusal(kms_env: dict[str, str]) -> None:
    provider = AwsKmsKeyProvider("aws-kms:alias/none", kms_client(kms_env))

    with pytest.raises(KeyProviderError, match="AWS KMS cannot encrypt: NotFoundException"):
        provider.protect(MasterKey.generate(), "vault")
