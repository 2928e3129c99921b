"""A hash table from non-negative 64-bit integer keys to integer values, kept in two numpy
arrays, looked up for a whole array of keys at once: the linear model's term index
(``monitor.linear``) and the language identifier's n-gram index (``monitor.language``)."""

from __future__ import annotations

from typing import Any


class KeyTable:
    """Non-negative integer keys to values in two numpy arrays: open addressing with
    linear probing, at most half full, so that a batch's keys are looked up a few
    vectorised probes at a time (a binary search over sorted keys took ~17 random reads
    a key)."""

    _MULTIPLIER = 0x9E3779B97F4A7C15     # Fibonacci hashing: the product's top bits

    def __init__(self, keys: Any, values: Any, room: int = 2) -> None:
        """``room``: at least this many slots a key (fewer probes, more memory)."""
        import numpy as np

        bits = max(4, (room * len(keys)).bit_length())
        self._size(bits)
        self.keys = np.full(1 << bits, -1, dtype=np.int64)         # -1: empty slot
        self.values = np.zeros(1 << bits, dtype=np.int64)
        slot = self._home(keys)
        pending = np.arange(len(keys))
        while len(pending):
            at = slot[pending]
            empty = self.keys[at] == -1
            _, first = np.unique(at[empty], return_index=True)     # one key per empty slot
            placed = pending[empty][first]
            self.keys[slot[placed]] = keys[placed]
            self.values[slot[placed]] = values[placed]
            waiting = np.ones(len(keys), dtype=bool)
            waiting[placed] = False
            pending = pending[waiting[pending]]
            slot[pending] = (slot[pending] + 1) & self.mask        # past an occupied slot

    def _size(self, bits: int) -> None:
        import numpy as np

        self.mask = (1 << bits) - 1
        self.shift = np.uint64(64 - bits)

    @classmethod
    def from_arrays(cls, keys: Any, values: Any) -> KeyTable:
        """The table whose ``keys`` and ``values`` these are (a power of two of slots)."""
        table = cls.__new__(cls)
        table._size(len(keys).bit_length() - 1)
        table.keys, table.values = keys, values
        return table

    def _home(self, keys: Any) -> Any:
        import numpy as np

        with np.errstate(over="ignore"):
            product = keys.astype(np.uint64) * np.uint64(self._MULTIPLIER)
        return (product >> self.shift).astype(np.int64)

    def get(self, keys: Any) -> Any:
        """Each key's value, -1 for a key the table does not hold."""
        import numpy as np

        found = np.full(len(keys), -1, dtype=np.int64)
        slot = self._home(keys)
        pending = np.arange(len(keys))
        while len(pending):
            at = slot[pending]
            stored = self.keys[at]
            hit = stored == keys[pending]
            found[pending[hit]] = self.values[at[hit]]
            going = ~hit & (stored != -1)
            pending = pending[going]
            slot[pending] = (at[going] + 1) & self.mask
        return found
