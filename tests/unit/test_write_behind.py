"""``streams.tables.WriteBehind``: a table's records are readable as soon as they are held,
reach the local store about once a second, and the changelog offset a recovery starts from is
never written before the values it covers, nor after a revocation."""

from __future__ import annotations

from collections.abc import Iterable

from streams.tables import WriteBehind


class RecordingStore:
    """A local store in memory that records each write batch."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}
        self.offsets: dict[int, int] = {}
        self.batches: list[tuple[int, list[tuple[bytes, bytes]], int | None]] = []

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get((partition, key))

    def write(self, partition: int, items: Iterable[tuple[bytes, bytes]],
              offset: int | None) -> None:
        written = list(items)
        self.batches.append((partition, written, offset))
        self.data.update(((partition, key), value) for key, value in written)
        if offset is not None:
            self.offsets[partition] = offset


def test_a_held_record_is_read_back_before_it_reaches_the_store() -> None:
    store = RecordingStore()
    store.data[0, b"card"] = b"old"
    behind = WriteBehind(store, seconds=3600.0)
    behind.hold([(0, b"card", b"new")])
    behind.write_if_due()
    assert behind.get(0, b"card") == b"new" and store.data[0, b"card"] == b"old"
    assert behind.get(1, b"card") is None, "another partition's database"
    behind.write()
    assert store.data[0, b"card"] == b"new" and behind.get(0, b"card") == b"new"


def test_records_are_written_when_due_or_when_too_many_are_held() -> None:
    store = RecordingStore()
    behind = WriteBehind(store, seconds=0.0)
    behind.hold([(2, b"a", b"1")])
    behind.write_if_due()
    assert store.batches == [(2, [(b"a", b"1")], None)]
    store.batches.clear()
    many = WriteBehind(store, seconds=3600.0, records=3)
    many.hold([(0, b"a", b"1"), (0, b"b", b"1")])
    many.hold([(0, b"a", b"2")])  # the same key again counts once
    many.write_if_due()
    assert store.batches == []
    many.hold([(1, b"c", b"1")])
    many.write_if_due()
    assert sorted(store.batches) == [(0, [(b"a", b"2"), (b"b", b"1")], None),
                                     (1, [(b"c", b"1")], None)]


def test_an_offset_is_written_with_or_after_the_values_it_covers_in_one_batch() -> None:
    store = RecordingStore()
    behind = WriteBehind(store, seconds=3600.0)
    behind.hold([(0, b"a", b"1")])  # sent to the changelog at offsets up to 41
    behind.write()  # written before Kafka acknowledged: values only
    assert store.offsets == {}
    behind.hold([(0, b"b", b"1")])  # sent at offset 42
    behind.acknowledged(0, 41, behind.generation)
    behind.acknowledged(0, 40, behind.generation)  # an older batch's late acknowledgement
    behind.write()
    assert store.batches[-1] == (0, [(b"b", b"1")], 41)
    behind.acknowledged(0, 42, behind.generation)
    behind.write()
    assert store.batches[-1] == (0, [], 42) and store.offsets == {0: 42}


def test_a_revocation_writes_everything_held_and_ignores_older_acknowledgements() -> None:
    store = RecordingStore()
    behind = WriteBehind(store, seconds=3600.0)
    sent_in = behind.generation
    behind.hold([(3, b"a", b"1")])
    behind.revoked()
    assert store.data == {(3, b"a"): b"1"} and store.offsets == {}
    behind.acknowledged(3, 7, sent_in)  # a recovery may have written newer offsets since
    behind.write()
    assert store.offsets == {}
    behind.hold([(3, b"a", b"2")])
    behind.acknowledged(3, 9, behind.generation)
    behind.write()
    assert store.offsets == {3: 9}
