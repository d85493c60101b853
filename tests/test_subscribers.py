"""subscribers.csv: good rows read, bad rows named by line and skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import subscribers
from digest.addresses import address_key, ascii_address, needs_smtputf8
from digest.cli import main
from digest.config import Keyword
from digest.subscribers import BadRow, Subscriber, SubscribersError, read_subscribers

KEYWORDS = [Keyword("Diffusion Model for Recommendation"), Keyword("Graph Neural Network")]


def read(tmp_path: Path, data: bytes) -> list[Subscriber | BadRow]:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(data)
    return list(read_subscribers(path, KEYWORDS))


def test_rows_with_bom_crlf_quotes_and_keyword_case(tmp_path):
    rows = read(
        tmp_path,
        (
            "\ufeffemail,name,keywords\r\n"
            'Ada@Example.ORG,"Lovelace, Ada",\r\n'
            "alan@example.org,Alan,graph neural network ; \r\n"
            "\r\n"
            "grace@example.org,,Graph Neural Network;DIFFUSION MODEL FOR RECOMMENDATION\r\n"
        ).encode(),
    )
    assert rows == [
        Subscriber(
            "Ada@Example.ORG",  # as written: the relay and the person see what they gave
            "Lovelace, Ada",
            ("diffusion model for recommendation", "graph neural network"),
            2,
        ),
        Subscriber("alan@example.org", "Alan", ("graph neural network",), 3),
        Subscriber(
            "grace@example.org",
            "",
            ("diffusion model for recommendation", "graph neural network"),
            5,
        ),
    ]


def test_bad_rows_are_named_by_line_and_good_rows_survive(tmp_path):
    rows = read(
        tmp_path,
        (
            b"email,name,keywords\n"
            b"not-an-address,X,\n"
            b"ada@example.org,Ada,\n"
            b"ADA@example.org,Ada again,\n"
            b"bob@example.org,Bob,Graph Neural Netwrk\n"
            b"carl@example.org,Carl\n"
            b'dan@example.org,"Dan\nInjected: yes",\n'
        )
        + b"eve@example.org,\xff\xfe,\n"
        + b"fay@example.org,Fay,\n",
    )
    good = [r.email for r in rows if isinstance(r, Subscriber)]
    bad = [str(r) for r in rows if isinstance(r, BadRow)]
    assert good == ["ada@example.org", "fay@example.org"]
    assert bad[0].startswith("subscribers.csv:2: bad email address 'not-an-address'")
    assert bad[1] == "subscribers.csv:4: ADA@example.org is already listed on line 3"
    assert bad[2].startswith(
        "subscribers.csv:5: unknown keyword 'Graph Neural Netwrk' "
        "(did you mean 'graph neural network'?)"
    )
    assert bad[3].startswith("subscribers.csv:6: has 2 fields, expected 3")
    assert bad[4] == "subscribers.csv:7: the name contains a line break or control character"
    assert bad[5] == "subscribers.csv:9: not valid UTF-8; save the file with UTF-8 encoding"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "subscribers.csv:1: the file is empty"),
        (b"\n\n", "subscribers.csv:1: the file is empty"),
        (b"mail,name,keywords\n", "subscribers.csv:1: the header is 'mail,name,keywords'"),
        (b"email,name\n", "subscribers.csv:1: the header is 'email,name'"),
        (b'"email,name,keywords\na@example.org,A,\n', "subscribers.csv:1: the header is"),
        (b"x" * 20_000 + b"\n", "subscribers.csv:1: the first line is longer than 10,000"),
    ],
)
def test_unusable_files_raise(tmp_path, data, message):
    with pytest.raises(SubscribersError, match=message):
        read(tmp_path, data)


def test_missing_file_raises(tmp_path):
    with pytest.raises(SubscribersError, match="cannot open it"):
        list(read_subscribers(tmp_path / "nope.csv", KEYWORDS))


def rows(count: int, start: int = 0) -> bytes:
    """Return `count` valid rows with distinct addresses."""
    return b"".join(b"p%d@example.org,P%d,\n" % (i, i) for i in range(start, start + count))


def invoke_check(tmp_path: Path):
    return CliRunner().invoke(
        main, ["--config", str(tmp_path / "settings.toml"), "check"], catch_exceptions=False
    )


def test_a_stray_quote_is_one_bad_row_and_the_rows_after_it_are_read(tmp_path):
    result = read(tmp_path, b'email,name,keywords\na@example.org,"A,\n' + rows(5000))
    good = [r for r in result if isinstance(r, Subscriber)]
    bad = [str(r) for r in result if isinstance(r, BadRow)]
    assert bad == [
        "subscribers.csv:2: a quote opens here and is never closed on this line "
        "(it would swallow the next 5000 rows); remove it or close it"
    ]
    assert len(good) == 5000
    assert (good[0].email, good[0].line, good[-1].email, good[-1].line) == (
        "p0@example.org",
        3,
        "p4999@example.org",
        5002,
    )


def test_check_reports_a_stray_quote_instead_of_crashing(make_settings, tmp_path):
    csv_text = 'email,name,keywords\nada@example.org,Ada,\na@example.org,"A,\n'
    make_settings(subscribers=csv_text + rows(5000).decode())
    result = invoke_check(tmp_path)
    assert result.exit_code == 2, result.output
    assert "subscribers.csv: 5001 valid, 1 bad row(s)" in result.output
    assert (
        "  subscribers.csv:3: a quote opens here and is never closed on this line (it would "
        "swallow the next 5000 rows); remove it or close it\n"
    ) in result.output


@pytest.mark.slow
def test_subscribers_command_lists_the_rows_after_a_stray_quote(make_settings, tmp_path):
    make_settings(subscribers='email,name,keywords\na@example.org,"A,\n' + rows(5000).decode())
    result = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "settings.toml"), "subscribers"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^subscribers\.csv:2 +invalid a quote opens here", result.output, re.M)
    assert result.output.count("p4999@example.org") == 1
    assert len(re.findall(r"^p\d+@example\.org +active ", result.output, re.M)) == 5000


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # A stray quote that a later quoted field closes: the row after it is still read.
        (
            b'a@example.org,"A,\nb@example.org,"Bea",\n',
            [
                "subscribers.csv:2: a quote opens here and is never closed on this line "
                "(it would swallow the next row); remove it or close it",
                ("b@example.org", "Bea", 3),
            ],
        ),
        # Two stray quotes farther apart than a name's line breaks: neither swallows rows.
        (
            b'a@example.org,"A,\n' + rows(15) + b'b@example.org,B",\n' + rows(2, 15),
            [
                "subscribers.csv:2: a quote opens here and is never closed on this line "
                "(it would swallow the next 16 rows); remove it or close it",
                *[(f"p{i}@example.org", f"P{i}", i + 3) for i in range(15)],
                ("b@example.org", 'B"', 18),
                ("p15@example.org", "P15", 19),
                ("p16@example.org", "P16", 20),
            ],
        ),
        # On the last line, with nothing after it.
        (
            b'a@example.org,A,\nb@example.org,"B',
            [
                ("a@example.org", "A", 2),
                "subscribers.csv:3: a quote opens here and is never closed on this line; "
                "remove it or close it",
            ],
        ),
        # Line breaks inside quotes (a spreadsheet cell with Alt+Enter): one bad row, no more.
        (
            b'a@example.org,"Ada\r\nLovelace\r\nCountess",\r\nb@example.org,B,\r\n',
            [
                "subscribers.csv:2: the name contains a line break or control character",
                ("b@example.org", "B", 5),
            ],
        ),
        (
            b'a@example.org,A,"graph neural network;\n"\nb@example.org,B,\n',
            [
                "subscribers.csv:2: the keywords contain a line break or control character",
                ("b@example.org", "B", 4),
            ],
        ),
        # Old Mac files end lines with a lone \r.
        (
            b'a@example.org,"A\rB",\rb@example.org,B,\r',
            [
                "subscribers.csv:2: the name contains a line break or control character",
                ("b@example.org", "B", 4),
            ],
        ),
        # A huge field (csv's limit is 131072) is a bad row, not a crash.
        (
            b'a@example.org,"' + b"x" * 200_000 + b'",\nb@example.org,B,\n' + b"y" * 50_000,
            [
                "subscribers.csv:2: the line is longer than 10,000 characters, too long for a "
                "subscriber; check it for a missing line break",
                ("b@example.org", "B", 3),
                "subscribers.csv:4: the line is longer than 10,000 characters, too long for a "
                "subscriber; check it for a missing line break",
            ],
        ),
    ],
)
def test_quotes_and_line_breaks(tmp_path, data, expected):
    result = read(tmp_path, b"email,name,keywords\n" + data)
    assert [str(r) if isinstance(r, BadRow) else (r.email, r.name, r.line) for r in result] == (
        expected
    )


@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_a_line_end_split_between_two_reads_is_one_line_end(tmp_path, shift):
    block = subscribers._BLOCK
    data = "email,name,keywords\r\n"
    count = 0
    while len(data) < block - 100:
        data += f"p{count}@example.org,P,\r\n"
        count += 1
    pad = block - 1 + shift - len(data) - len(f"p{count}@example.org,,")
    data += f"p{count}@example.org,{'P' * pad},\r\nlast@example.org,L,\r\n"
    assert data.index("\r\nlast") == block - 1 + shift
    result = read(tmp_path, data.encode())
    assert all(isinstance(r, Subscriber) for r in result)
    assert [r.line for r in result] == list(range(2, count + 4))


JUNK = st.lists(
    st.sampled_from(
        [
            b'"',
            b'""',
            b',"',
            b'",',
            b",",
            b"\n",
            b"\r",
            b"\r\n",
            b" ",
            b"x",
            b"\xff",
            b"\xe2\x82",
            b"\0",
        ]
    )
    | st.binary(max_size=6),
    max_size=30,
).map(b"".join)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one file, rewritten
@given(pieces=st.lists(st.none() | JUNK, max_size=25), tail=JUNK)
@pytest.mark.slow
def test_junk_never_raises_and_never_hides_a_row_without_quotes(tmp_path, pieces, tail):
    data, good, line = b"email,name,keywords\n" + rows(3), {}, 5
    for number, piece in enumerate(pieces):
        if piece is None:  # a valid row of its own, without quotes
            good[f"g{number}@example.org"] = line
            data += b"g%d@example.org,G,graph neural network\n" % number
            line += 1
        else:  # junk lines with quotes, commas, line breaks, bytes that are not UTF-8
            data += piece + b"\n"
            line += len(re.findall(rb"\r\n|\r|\n", piece + b"\n"))
    result = read(tmp_path, data + tail)
    subscribers = {r.email: r.line for r in result if isinstance(r, Subscriber)}
    assert {f"p{i}@example.org": i + 2 for i in range(3)}.items() <= subscribers.items()
    assert good.items() <= subscribers.items()
    lines = [r.line for r in result]
    assert lines == sorted(set(lines))


@pytest.mark.parametrize(
    ("address", "smtputf8", "ascii_form"),
    [
        ("user@example.org", False, "user@example.org"),
        ("User@EXAMPLE.ORG", False, "User@EXAMPLE.ORG"),
        ("ü@example.org", True, None),
        ("user@bücher.de", False, "user@xn--bcher-kva.de"),
        ("user@BÜCHER.DE", False, "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", False, "user@xn--bcher-kva.de"),
        ("user@XN--BCHER-KVA.DE", False, "user@XN--BCHER-KVA.DE"),
        ("用户@例子.广告", True, None),
        ("user@例子.广告", False, "user@xn--fsqu00a.xn--4rr70v"),
    ],
)
def test_smtputf8_and_ascii_forms(address, smtputf8, ascii_form):
    assert needs_smtputf8(address) is smtputf8
    assert ascii_address(address) == ascii_form
    if ascii_form:  # one key for every spelling, as a previous release's normalized form gave
        assert address_key(address) == address_key(ascii_form) == address_key(address.upper())


def test_addresses_are_kept_as_written_and_repeats_found_in_any_spelling(tmp_path):
    result = read(
        tmp_path,
        (
            "email,name,keywords\n"
            "  a@xn--bcher-kva.de ,A,\n"
            "A@Bücher.DE,A again,\n"
            "ü@Example.ORG,U,\n"
            "Ü@example.org,U again,\n"
            "用户@例子.广告,Yonghu,\n"
            "b@BÜCHER.de,B,\n"
        ).encode(),
    )
    assert [str(r) if isinstance(r, BadRow) else (r.email, r.line) for r in result] == [
        ("a@xn--bcher-kva.de", 2),
        "subscribers.csv:3: A@Bücher.DE is already listed on line 2 as a@xn--bcher-kva.de",
        ("ü@Example.ORG", 4),
        ("Ü@example.org", 5),  # only ASCII letters are folded before the @ (issue 17)
        ("用户@例子.广告", 6),
        ("b@BÜCHER.de", 7),
    ]


def test_check_names_the_addresses_that_need_smtputf8(make_settings, tmp_path):
    make_settings(
        subscribers="email,name,keywords\n"
        "ada@example.org,Ada,\n"
        "ü@example.org,U,\n"
        "a@bücher.de,A,\n"
        "用户@例子.广告,Yonghu,\n"
    )
    result = invoke_check(tmp_path)
    assert result.exit_code == 0, result.output
    assert (
        "subscribers.csv: 4 valid, 0 bad row(s)\n"
        "  2 address(es) need a relay that offers SMTPUTF8 (non-ASCII before the @): "
        "line 3 ü@example.org, line 5 用户@例子.广告\n"
    ) in result.output


def test_check_is_quiet_about_smtputf8_when_every_address_is_ascii(make_settings, tmp_path):
    make_settings(subscribers="email,name,keywords\nada@example.org,Ada,\na@bücher.de,A,\n")
    result = invoke_check(tmp_path)
    assert result.exit_code == 0, result.output
    assert "SMTPUTF8" not in result.output
