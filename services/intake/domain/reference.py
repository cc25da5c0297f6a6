"""Case references (sagsreferencer) like MV-7K3Q-9FX: short, readable over the phone, with a check symbol.

Format: "MV-" (the district), four symbols, "-", two symbols and a check symbol. The alphabet is
the 29 symbols 2-9 and A-Z without I, L, O, U and Z: no 0/O, 1/I/L or 2/Z to mix up when read
aloud or off a handwritten note, and no U (Crockford's reason: fewer accidental words).

The check symbol makes sum((i + 1) * value(symbol_i)) over all seven symbols divisible by 29.
Because 29 is prime and the weights 1..7 are distinct and non-zero modulo 29, every
single-symbol mistake and every swap of two symbols (adjacent or not) changes that sum, so
`normalize_reference` rejects it instead of finding another citizen's case.

Collision math. Six random symbols give N = 29**6 = 594,823,321 references. With n = 1,000,000
cases stored, a fresh reference hits an existing one with probability n / N ≈ 0.17 %; over the
first million cases about n**2 / (2 N) ≈ 840 draws collide in total, and a draw that needs a
third attempt has odds of about (n / N)**2 ≈ 3 in a million. Uniqueness is therefore left to the
database's unique constraint, and the caller draws again on a violation. References are not
secrets: nobody reads a case by reference alone.
"""

from __future__ import annotations

import random
import secrets
from typing import Final

ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTVWXY"
PREFIX: Final = "MV"
RANDOM_SYMBOLS: Final = 6
_MODULUS: Final = len(ALPHABET)
_VALUE: Final = {symbol: value for value, symbol in enumerate(ALPHABET)}
_SEPARATORS: Final = str.maketrans("", "", " -._/\t")
_SYSTEM_RANDOM: Final = secrets.SystemRandom()


def new_reference(rng: random.Random | None = None) -> str:
    """A fresh reference, e.g. "MV-7K3Q-9FX"; `rng` defaults to the OS's secure source.

    Pass `random.Random(seed)` in tests for repeatable references.
    """
    source = rng or _SYSTEM_RANDOM
    body = "".join(source.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return _format(body + check_symbol(body))


def check_symbol(body: str) -> str:
    """The symbol that completes `body` (six symbols of ALPHABET) into a valid reference."""
    if len(body) != RANDOM_SYMBOLS or any(symbol not in _VALUE for symbol in body):
        raise ValueError(f"a reference body is {RANDOM_SYMBOLS} symbols of {ALPHABET}")
    weighted = _weighted_sum(body)
    check_weight = RANDOM_SYMBOLS + 1
    # Solve weighted + check_weight * c ≡ 0 (mod 29) for c.
    value = (-weighted * pow(check_weight, -1, _MODULUS)) % _MODULUS
    return ALPHABET[value]


def normalize_reference(text: str) -> str | None:
    """The canonical "MV-XXXX-XXX" for what a citizen or officer typed, or None if it is no reference.

    Tolerates lower case, spaces, missing or extra dashes, and a missing "MV". A wrong symbol,
    two swapped symbols, or a symbol outside the alphabet (0, O, 1, I, L, U, Z) gives None.
    """
    compact = text.upper().translate(_SEPARATORS)
    symbols = RANDOM_SYMBOLS + 1
    if len(compact) == len(PREFIX) + symbols and compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    if len(compact) != symbols or any(symbol not in _VALUE for symbol in compact):
        return None
    if (_weighted_sum(compact)) % _MODULUS != 0:
        return None
    return _format(compact)


def is_valid_reference(text: str) -> bool:
    """True when `text` names a well-formed reference (in any form normalize_reference accepts)."""
    return normalize_reference(text) is not None


def _weighted_sum(symbols: str) -> int:
    return sum((position + 1) * _VALUE[symbol] for position, symbol in enumerate(symbols))


def _format(symbols: str) -> str:
    return f"{PREFIX}-{symbols[:4]}-{symbols[4:]}"
