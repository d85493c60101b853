"""subscribers.csv: good rows read, bad rows named by line and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

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
            "Ada@example.org",
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
    ],
)
def test_unusable_files_raise(tmp_path, data, message):
    with pytest.raises(SubscribersError, match=message):
        read(tmp_path, data)


def test_missing_file_raises(tmp_path):
    with pytest.raises(SubscribersError, match="cannot open it"):
        list(read_subscribers(tmp_path / "nope.csv", KEYWORDS))
