"""Key providers: the environment, Shamir shares (SLIP-39), and their refusals."""

from __future__ import annotations

import itertools

import pytest

from databunker.crypto import MasterKey
from databunker.crypto.providers import (
    AwsKmsKeyProvider,
    EnvironmentKeyProvider,
    KeyProviderError,
    MalformedShare,
    ShamirKeyProvider,
    ShareCollector,
    SharesDoNotMatch,
    combine_shares,
    parse_share,
)


def shares_of(master: MasterKey, shares: int = 5, threshold: int = 3) -> list[str]:
    printed = ShamirKeyProvider(shares, threshold).protect(master, "vault").printed
    return [line.split("=", 1)[1] for line in printed]


def test_init_prints_one_share_line_each_and_no_master_key() -> None:
    master = MasterKey.generate()
    protected = ShamirKeyProvider(5, 3).protect(master, "vault")

    assert [line.split("=", 1)[0] for line in protected.printed] == [
        f"DATABUNKER_SHARE_{n}" for n in range(1, 6)
    ]
    assert all(master.hex() not in line for line in protected.printed)
    assert all(" " not in line for line in protected.printed)  # pasted into a shell as is
    assert protected.stored == {
        "key_provider": "shamir",
        "shamir_threshold": "3",
        "shamir_shares": "5",
    }


def test_any_three_of_five_shares_in_any_order_rebuild_the_key() -> None:
    master = MasterKey.generate()
    shares = shares_of(master)

    for chosen in itertools.permutations(shares, 3):
        collector = ShareCollector(3)
        assert collector.add(chosen[0]) is None
        assert collector.add(chosen[1]) is None
        assert collector.progress == 2
        rebuilt = collector.add(chosen[2])
        assert rebuilt is not None
        assert rebuilt.hex() == master.hex()


def test_a_share_is_accepted_with_its_variable_name_or_as_spaced_words() -> None:
    share = shares_of(MasterKey.generate())[0]

    assert parse_share(f"DATABUNKER_SHARE_1={share}\n") == parse_share(share.replace("-", " "))


def test_a_malformed_share_is_refused_and_not_counted() -> None:
    share = shares_of(MasterKey.generate())[0]
    words = share.split("-")
    collector = ShareCollector(3)

    for bad in ("", "hello", "-".join(words[:-1]), "-".join([*words[:-1], words[0]])):
        with pytest.raises(MalformedShare):
            collector.add(bad)
    assert collector.progress == 0


def test_the_same_share_twice_counts_once() -> None:
    share = shares_of(MasterKey.generate())[0]
    collector = ShareCollector(3)

    collector.add(share)
    collector.add(share)

    assert collector.progress == 1


def test_shares_of_two_vaults_do_not_combine() -> None:
    first, second = shares_of(MasterKey.generate()), shares_of(MasterKey.generate())

    with pytest.raises(SharesDoNotMatch):
        combine_shares([parse_share(s) for s in (first[0], first[1], second[2])])


@pytest.mark.parametrize(("shares", "threshold"), [(1, 1), (5, 1), (3, 4), (17, 3)])
def test_impossible_share_counts_are_refused(shares: int, threshold: int) -> None:
    with pytest.raises(KeyProviderError):
        ShamirKeyProvider(shares, threshold)


def test_environment_provider_names_what_to_set() -> None:
    with pytest.raises(KeyProviderError, match="DATABUNKER_MASTERKEY"):
        EnvironmentKeyProvider(None).master_key()
    with pytest.raises(KeyProviderError, match="hexadecimal"):
        EnvironmentKeyProvider("zz" * 32).master_key()


def test_a_kms_key_must_name_its_provider() -> None:
    for bad in ("alias/vault", "aws-kms:", "kms:abc"):
        with pytest.raises(KeyProviderError, match="aws-kms:"):
            AwsKmsKeyProvider(bad)
