"""The text check every service applies (shared/validation.py): what a name, an id or free text may hold."""

from __future__ import annotations

import sys
import unicodedata
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, ValidationError

from shared.http import install_problem_handlers
from shared.validation import FreeText, SingleLine, readable, text_problem

C0 = [chr(c) for c in range(0x00, 0x20)]  # NUL, TAB, LF, CR and the rest
DEL_AND_C1 = [chr(c) for c in range(0x7F, 0xA0)]
BIDI = ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
# The other invisible (format) characters: soft hyphen, invisible operators, tags (U+E0041 is an
# invisible "A": text a reader never sees), the Mongolian vowel separator.
OTHER_INVISIBLE = ["\u00ad", "\u2062", "\u206f", "\U000e0041", "\u180e", "\ufff9"]
SEPARATORS = ["\u2028", "\u2029"]
# Text people write: letters of any script, markup, quotes, a no-break space, an emoji.
FINE = [
    "Mette Hansen-Testesen",
    "Søren Ærø",
    "Zoë O'Brien",
    "محمد",
    "אברהם",
    "Ørsted <b>&amp;",
    "vc-a",
    "10\u00a0kr",
    "🙂",
]


def point(char: str) -> str:
    return f"U+{ord(char):04X}"


class Named(BaseModel):
    name: Annotated[str, SingleLine]
    note: Annotated[str | None, SingleLine] = None
    text: Annotated[str, FreeText] = ""


def refusal(**fields: str) -> dict[str, tuple[str, str]]:
    """{field: (code, message)} of what Named refuses."""
    with pytest.raises(ValidationError) as caught:
        Named.model_validate(fields)
    return {str(e["loc"][0]): (e["type"], readable(e)) for e in caught.value.errors()}


@pytest.mark.parametrize("char", [c for c in C0 if c not in "\t\n\r"] + DEL_AND_C1, ids=point)
def test_control_characters_are_refused_in_names_and_free_text(char: str) -> None:
    problem = f"Contains a control character ({point(char)}); remove it."
    assert refusal(name=f"Jens{char}Hansen") == {"name": ("control_characters", problem)}
    assert refusal(name="Jens", text=f"Hjælp{char}") == {"text": ("control_characters", problem)}


@pytest.mark.parametrize("char", ["\n", "\r", *SEPARATORS], ids=point)
def test_a_name_is_one_line(char: str) -> None:
    """A CR LF in a name wrote a forged line into an official e-mail."""
    forged = f"Jens Hansen{char}Bcc: alle@politi.example"
    assert refusal(name=forged) == {
        "name": ("single_line", f"Write this on one line: it contains a line break ({point(char)}).")
    }


def test_a_tab_is_no_part_of_a_name() -> None:
    assert refusal(name="Jens\tHansen")["name"] == (
        "control_characters",
        "Contains a control character (U+0009); remove it.",
    )


@pytest.mark.parametrize("char", BIDI, ids=point)
def test_bidi_controls_are_refused_everywhere(char: str) -> None:
    message = f"Contains an invisible text-direction character ({point(char)}); remove it."
    assert refusal(name=f"vc-a{char}", text=f"stjålet {char}cba") == {
        "name": ("bidi_control", message),
        "text": ("bidi_control", message),
    }


@pytest.mark.parametrize("char", ZERO_WIDTH + OTHER_INVISIBLE, ids=point)
def test_zero_width_characters_are_refused_everywhere(char: str) -> None:
    """A zero-width character made a name look like a roster id."""
    message = f"Contains an invisible character ({point(char)}); remove it."
    assert refusal(name=f"vc{char}-a", text=f"x{char}y") == {
        "name": ("invisible_character", message),
        "text": ("invisible_character", message),
    }


def test_every_control_format_and_line_separator_character_of_unicode_is_refused_and_nothing_else() -> None:
    """The classes are written out for speed; unicodedata says which they must be (Cc, Cf, Zl, Zp)."""
    # Surrogates left out: no JSON or URL decoding gives one (pydantic and Starlette refuse them).
    every = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    refused = {c for c in every if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")}
    for free_text, refused_here in ((False, refused), (True, refused - set("\t\n\r"))):
        assert [point(c) for c in sorted(refused_here) if text_problem(f"a{c}b", free_text=free_text) is None] == []
        assert text_problem("".join(c for c in every if c not in refused_here), free_text=free_text) is None


def test_unicode_line_separators_are_refused_in_free_text_too() -> None:
    assert refusal(name="ok", text="a\u2028b")["text"] == (
        "control_characters",
        "Contains a Unicode line separator (U+2028); use a line break.",
    )


def test_free_text_keeps_tabs_and_line_breaks_and_writes_every_line_break_as_lf() -> None:
    found = Named.model_validate({"name": "Jens", "text": "Linje 1\r\nLinje 2\rLinje 3\n\tindrykket"})
    assert found.text == "Linje 1\nLinje 2\nLinje 3\n\tindrykket"


@pytest.mark.parametrize("text", FINE)
def test_what_people_write_passes_unchanged(text: str) -> None:
    found = Named.model_validate({"name": text, "note": text, "text": text})
    assert (found.name, found.note, found.text) == (text, text, text)
    assert text_problem(text) is None and text_problem(text, free_text=True) is None


def test_the_first_bad_character_is_named_and_the_input_never_repeated() -> None:
    [(code, message)] = refusal(name="ring 20304050\u202e\x00").values()
    assert code == "bidi_control" and "U+202E" in message and "20304050" not in message


def test_none_passes_an_optional_field() -> None:
    assert Named.model_validate({"name": "Jens", "note": None}).note is None


async def test_a_query_parameter_with_a_nul_is_a_422_naming_each_bad_parameter() -> None:
    """A NUL once reached Postgres (which refuses it in text): a 500, and nothing recorded."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    async def things(
        kommune: Annotated[str | None, Query(), SingleLine] = None,
        rule: Annotated[str | None, Query(), SingleLine] = None,
    ) -> dict[str, str | None]:
        return {"kommune": kommune, "rule": rule}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/things", params={"kommune": "02\x0065", "rule": "x\u202e", "other": "\x00"})
        fine = await client.get("/things", params={"kommune": "0265"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [
        {
            "field": "kommune",
            "in": "query",
            "message": "Contains a control character (U+0000); remove it.",
            "code": "control_characters",
        },
        {
            "field": "rule",
            "in": "query",
            "message": "Contains an invisible text-direction character (U+202E); remove it.",
            "code": "bidi_control",
        },
    ]
    assert fine.json() == {"kommune": "0265", "rule": None}
