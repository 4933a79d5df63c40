"""The fast murmur2 is Kafka's: equal to aiokafka's on any bytes, so a message keyed by payflow
lands on the partition any other Kafka client would pick."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.partitioning import key_hash, key_hashes, murmur2, partition_for, partitioner


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas_on_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=40))
def test_keys_hashed_together_hash_as_each_alone(keys: list[bytes]) -> None:
    assert key_hashes(keys) == [key_hash(key) for key in keys]


def test_payment_ids_of_mixed_lengths_hashed_together_hash_as_each_alone() -> None:
    keys = [f"pay_{index}".encode() * (index % 5) for index in range(2000)]
    assert key_hashes(keys) == [key_hash(key) for key in keys]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(1, 64))
def test_a_key_lands_where_aiokafkas_default_partitioner_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert partitioner(key, partitions, partitions) == expected
    assert partition_for(key, count) == expected


def test_kafkas_own_test_vectors() -> None:
    """Values of Kafka's Java client (``UtilsTest.testMurmur2``), as unsigned 32-bit."""
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
               b"abc": 479470107}
    for data, signed in vectors.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


def test_a_message_without_key_goes_to_an_available_partition() -> None:
    assert all(partitioner(None, [0, 1, 2, 3], [2]) == 2 for _ in range(20))
    assert {partitioner(None, [0, 1], []) for _ in range(200)} == {0, 1}
