"""Case references: readable over the phone, and a mistyped one is caught rather than misread."""

from __future__ import annotations

import random
import re

import pytest

from services.intake.domain.reference import (
    ALPHABET,
    check_symbol,
    is_valid_reference,
    new_reference,
    normalize_reference,
)

SHAPE = re.compile(rf"MV-[{ALPHABET}]{{4}}-[{ALPHABET}]{{3}}")


def test_references_look_like_mv_four_and_three_symbols() -> None:
    rng = random.Random(2026)
    for _ in range(1000):
        reference = new_reference(rng)
        assert SHAPE.fullmatch(reference), reference
        assert is_valid_reference(reference)


def test_the_alphabet_has_no_symbols_that_are_confused_on_the_phone() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 29


def test_a_seeded_source_repeats_and_the_default_source_does_not() -> None:
    assert new_reference(random.Random(7)) == new_reference(random.Random(7))
    drawn = {new_reference() for _ in range(50)}
    assert len(drawn) == 50
    assert all(is_valid_reference(r) for r in drawn)


def test_ten_thousand_references_rarely_collide() -> None:
    rng = random.Random(1)
    drawn = [new_reference(rng) for _ in range(10_000)]
    # Expected collisions: 10_000**2 / (2 * 29**6) ≈ 0.08.
    assert len(set(drawn)) >= 9_998


def test_every_single_mistyped_symbol_is_detected() -> None:
    reference = new_reference(random.Random(3))
    symbols = reference.replace("MV-", "").replace("-", "")
    for position in range(len(symbols)):
        for wrong in ALPHABET:
            if wrong == symbols[position]:
                continue
            typo = symbols[:position] + wrong + symbols[position + 1 :]
            assert not is_valid_reference(typo), typo


def test_every_swap_of_two_symbols_is_detected() -> None:
    rng = random.Random(4)
    for _ in range(50):
        symbols = new_reference(rng).replace("MV-", "").replace("-", "")
        for i in range(len(symbols)):
            for j in range(i + 1, len(symbols)):
                if symbols[i] == symbols[j]:
                    continue
                swapped = list(symbols)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                assert not is_valid_reference("".join(swapped)), (symbols, i, j)


def test_normalize_tolerates_case_spaces_and_missing_dashes() -> None:
    reference = new_reference(random.Random(5))
    body = reference[3:].replace("-", "")
    typed = [reference.lower(), reference.replace("-", " "), reference.replace("-", ""), body,
             f"  {body[:4]} {body[4:]} ", reference.replace("-", "."), "mv" + body.lower()]  # fmt: skip
    for form in typed:
        assert normalize_reference(form) == reference, form


@pytest.mark.parametrize("typed", ["", "MV", "MV-7K3Q-9F", "MV-7K3Q-9FXX", "MV-7K3O-9FX", "MV-1K3Q-9FX", "hello world"])
def test_normalize_refuses_what_is_no_reference(typed: str) -> None:
    assert normalize_reference(typed) is None
    assert not is_valid_reference(typed)


def test_check_symbol_completes_a_body() -> None:
    body = "7K3Q9F"
    assert normalize_reference(body + check_symbol(body)) == f"MV-7K3Q-9F{check_symbol(body)}"
    with pytest.raises(ValueError):
        check_symbol("7K3Q0F")
