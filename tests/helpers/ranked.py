"""Ranked digests as received: papers with subjects to like and dislike, the raw message's parts
read section by section, its vote links, and a web client that votes as a browser does."""

from __future__ import annotations

import email
import email.policy
import html
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

from helpers.builders import make_paper
from helpers.cycles import BASE, DAY1, GNN
from helpers.fake_arxiv import FeedPaper

DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)
READERS = f"email,name,keywords\nada@example.org,Ada,{GNN}\nbob@example.org,Bob,{GNN}\n"
ADA, BOB = "ada@example.org", "bob@example.org"
HREF = re.compile(r'href="([^"]+)"')


def paper(pid: str, title: str, abstract: str, day: datetime, hours: float) -> FeedPaper:
    """Return a paper updated `hours` before a cycle's moment."""
    return make_paper(pid, title, day - timedelta(hours=hours), abstract=abstract)


# The first day: two papers on drugs and proteins (liked), one on road traffic (disliked).
FIRST = [
    paper("2511.10001", "Graph neural networks for drug binding to protein targets",
          "A graph neural network scores the binding affinity of drug molecules to protein "
          "targets and pockets.", DAY1, 1),
    paper("2511.10002", "Protein pockets and drug molecules with graph neural networks",
          "A graph neural network docks drug molecules into protein pockets and scores their "
          "binding.", DAY1, 2),
    paper("2511.10003", "Graph neural networks for traffic forecasting",
          "A graph neural network forecasts road traffic congestion from city sensors.", DAY1, 3),
    paper("2511.10004", "Graph neural networks for citation graphs",
          "A graph neural network classifies papers in citation graphs.", DAY1, 4),
]  # fmt: skip
LIKED, LIKED_TOO, DISLIKED = FIRST[0].id, FIRST[1].id, FIRST[2].id
# The second day: traffic again (the newest, and the topic's words most), two papers on other
# subjects, and one on drugs and proteins that both the date and the words put last.
SECOND = [
    paper("2511.20001", "Graph neural networks for road traffic",
          "Graph neural networks and a graph neural network forecast road traffic congestion "
          "from city sensors.", DAY2, 1),
    paper("2511.20002", "Graph neural networks for social recommendation",
          "A graph neural network ranks friends and posts for people in social graphs.", DAY2, 2),
    paper("2511.20003", "Graph neural networks for knowledge graph completion",
          "A graph neural network completes knowledge graphs with links between entities.",
          DAY2, 3),
    paper("2511.20004", "Drug molecules binding protein pockets",
          "We score the binding affinity of drug molecules to protein targets and pockets, with "
          "a graph neural network.", DAY2, 4),
]  # fmt: skip
TRAFFIC, NEUTRAL, DRUGS = SECOND[0].id, (SECOND[1].id, SECOND[2].id), SECOND[3].id
SUBJECTS = ("compilers", "weather", "music", "chess", "finance", "power grids", "epidemics",
            "robots", "satellites")  # fmt: skip
# The third day: eleven papers (a top picks block); drugs again the oldest and weakest.
THIRD = [
    paper("2511.30001", "Graph neural networks for road traffic flow",
          "Graph neural networks and a graph neural network forecast road traffic flow from "
          "city sensors.", DAY3, 1),
    *(
        paper(f"2511.300{n + 2:02d}", f"Graph neural networks for {subject}",
              f"A graph neural network models {subject} with data of many kinds.", DAY3,
              2 + n / 10)
        for n, subject in enumerate(SUBJECTS)
    ),
    paper("2511.30099", "Drug molecules in protein pockets",
          "Docking drug molecules into protein pockets, their binding scored by a graph neural "
          "network.", DAY3, 5),
]  # fmt: skip
DRUGS_AGAIN = THIRD[-1].id


def parts(raw: bytes) -> tuple[str, str]:
    """Return the text and HTML parts of a message as received, decoded from their transfer
    encodings by the email package."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = {
        part.get_content_type(): part.get_payload(decode=True).decode().replace("\r\n", "\n")
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }
    return found["text/plain"], found["text/html"]


def html_sections(page: str) -> dict[str, list[tuple[str, str]]]:
    """Return an HTML part's sections by title: each paper's arXiv id and its HTML."""
    found = {}
    for chunk in page.split('<h2 id="topic-')[1:]:
        title = html.unescape(re.match(r'\d+"[^>]*>(.*?) <span class="n">', chunk)[1])
        papers = chunk.split("<h3>")[1:]
        found[title] = [
            (re.search(r'href="https://arxiv.org/abs/([^"]+)v\d+"', p)[1], p) for p in papers
        ]
    return found


def text_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Return a text part's sections by title: each paper's arXiv id and its lines."""
    found = {}
    body = text.split("\n-- \n")[0]
    for chunk in re.split(r"^== ", body, flags=re.M)[1:]:
        title = re.match(r"(.*) \(\d+\) ==", chunk)[1]
        papers = re.split(r"^\* ", chunk, flags=re.M)[1:]
        found[title] = [
            (re.search(r"Abstract: https://arxiv.org/abs/(\S+)v\d+", p)[1], p) for p in papers
        ]
    return found


def order(sections: dict[str, list[tuple[str, str]]], title: str = GNN) -> list[str]:
    """Return a section's arXiv ids in order."""
    return [pid for pid, _ in sections[title]]


def said(chunk: str) -> str:
    """Return an HTML or text chunk as read: tags removed, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", chunk)).split())


def links(page: str, prefix: str) -> list[str]:
    """Return the page's links (decoded) that start with `prefix`."""
    return [u for u in map(html.unescape, HREF.findall(page)) if u.startswith(prefix)]


class Browser:
    """A client that follows mailed links to a test server and sends forms as a browser does."""

    def __init__(self, client: aiohttp.ClientSession, url: str):
        self.client, self.url = client, url

    def local(self, link: str) -> str:
        return link.replace(BASE, self.url)

    async def get(self, link: str) -> tuple[int, str]:
        async with self.client.get(self.local(link)) as answer:
            return answer.status, await answer.text()

    async def submit(self, link: str, page: str, action: str = "", **fields: str) -> str:
        """Send the form of a page opened at `link` whose action's path is `action` (none: the
        page itself) and whose hidden fields hold `fields`; return the next page."""
        forms = re.findall(r'<form method="post"(?: action="([^"]*)")?>(.*?)</form>', page, re.S)
        for found, inside in forms:
            hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', inside))
            found = html.unescape(found)
            if found.split("?")[0] == action and fields.items() <= hidden.items():
                target = urljoin(self.local(link), found)
                data = {k: html.unescape(v) for k, v in hidden.items()}
                headers = {"Origin": self.url}  # what a browser sends with a form
                async with self.client.post(target, data=data, headers=headers) as answer:
                    assert answer.status == 200, await answer.text()
                    return await answer.text()
        raise AssertionError(f"no form {action!r} with {fields} on the page")


def copy_database(source: Path, target: Path) -> None:
    """Copy a database as SQLite does (its write-ahead log included)."""
    with sqlite3.connect(source) as old, sqlite3.connect(target) as new:
        old.backup(new)
    old.close()
    new.close()
