"""The fallback input generator, for where atheris does not install: mutations of the seeds in
the style of libFuzzer's (bit flips, byte and integer overwrites, block erase, duplicate and
move, interesting values, dictionary tokens, splicing two inputs), two it lacks (a block
repeated in place hundreds of times; a run of decimal digits replaced by another number or a
token, which keeps a text format well formed), and plain random bytes.

``mutate`` takes its randomness from a ``random.Random`` that the caller seeds: the hypothesis
driver (``fuzz.engines``) draws that seed and the fresh bytes, so a failing example replays.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x00\x00",
    b"\xff\xff",
    b"\x7f\xff",
    b"\x80\x00",
    b"\x01\x00",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00",
)


_DIGITS = frozenset(b"0123456789")
_NUMBERS = (b"0", b"-1", b"65536", b"4294967296", b"99999999999999999999999", b"1e400", b"-0")


def mutate(
    data: bytes,
    rng: random.Random,
    *,
    max_len: int,
    others: Sequence[bytes] = (),
    dictionary: Sequence[bytes] = (),
) -> bytes:
    """``data`` after one to eight random mutations, at most ``max_len`` bytes long."""
    buf = bytearray(data)
    for _ in range(1 + int(rng.expovariate(0.6)) % 8):
        _one(buf, rng, others, dictionary)
    return bytes(buf[:max_len])


def _one(
    buf: bytearray, rng: random.Random, others: Sequence[bytes], dictionary: Sequence[bytes]
) -> None:
    n = len(buf)
    choice = rng.randrange(12)
    at = rng.randrange(n + 1)
    if choice == 0 and n:  # flip one bit
        i = rng.randrange(n)
        buf[i] ^= 1 << rng.randrange(8)
    elif choice == 1 and n:  # overwrite one byte
        buf[rng.randrange(n)] = rng.randrange(256)
    elif choice == 2 and n:  # erase a block
        end = min(n, at + 1 + int(rng.expovariate(0.1)))
        del buf[at:end]
    elif choice == 3:  # insert random bytes
        buf[at:at] = rng.randbytes(1 + int(rng.expovariate(0.2)))
    elif choice == 4 and n:  # duplicate a block somewhere else
        start = rng.randrange(n)
        block = buf[start : start + 1 + int(rng.expovariate(0.05))]
        buf[at:at] = block
    elif choice == 5:  # an interesting value, overwritten or inserted
        value = rng.choice(_INTERESTING)
        if rng.random() < 0.5 and n >= len(value):
            i = rng.randrange(n - len(value) + 1)
            buf[i : i + len(value)] = value
        else:
            buf[at:at] = value
    elif choice == 6 and dictionary:  # a token
        token = rng.choice(dictionary)
        if rng.random() < 0.5 and n >= len(token):
            i = rng.randrange(n - len(token) + 1)
            buf[i : i + len(token)] = token
        else:
            buf[at:at] = token
    elif choice == 7 and others:  # splice with another input
        other = rng.choice(others)
        cut = rng.randrange(len(other) + 1)
        buf[at:] = other[cut:]
    elif choice == 8 and n:  # a block repeated in place many times: long numbers, deep nesting
        start = rng.randrange(n)
        block = buf[start : start + 1 + rng.randrange(4)]
        buf[start:start] = block * rng.choice((16, 300, 1200, 5000))
    elif choice == 10 and n:  # a run of decimal digits replaced: numbers in text formats
        i = rng.randrange(n)
        start, end = i, i
        while start > 0 and buf[start - 1] in _DIGITS:
            start -= 1
        while end < n and buf[end] in _DIGITS:
            end += 1
        if start < end:
            buf[start:end] = rng.choice((*_NUMBERS, *dictionary) if dictionary else _NUMBERS)
    elif choice == 9 and n >= 2:  # add or subtract a small number at some byte
        i = rng.randrange(n)
        buf[i] = (buf[i] + rng.randrange(-16, 17)) % 256
    elif n:  # truncate
        del buf[rng.randrange(n) :]


def random_input(rng: random.Random, max_len: int) -> bytes:
    """Plain random bytes, mostly short."""
    return rng.randbytes(min(max_len, int(rng.expovariate(1 / 64))))
