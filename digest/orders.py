"""What a reader gets in a cycle, before it is made: a digest's order, kept as JSON if personal.

Planning decides each reader's order: a few keys, their news window, their own topic lines and
whether their votes order it. A shared order is made and rendered at once; a personal one (own
topics, or votes) is stored as it is and made when its message is sent (`bodies.Bodies`), where
its sections are matched, ranked and rendered. So a list where nearly every reader has a digest
of their own plans about as fast as one where they share a few.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

ORDER = 1  # the stored orders' JSON layout; a stored order of another is refused, by its edition
_START = '{"order":'  # how a stored order begins (a stored recipe begins otherwise)


class BadOrder(ValueError):
    """A stored order cannot be read (another layout, or damaged JSON)."""


@dataclass(frozen=True)
class Order:
    """What one digest is made of: its readers' topics, news window, abstracts mode, own
    topics and votes (equal orders: one digest, shared by their readers)."""

    topics: tuple[str, ...]  # the readers' keyword keys, in settings order
    since: int | None  # their news is of the cycles after this one (None: this cycle's)
    abstracts: str
    resumed: date | None = None  # their pause ended that day: the email says so
    own: tuple[str, ...] | None = None  # their own topic lines (None: none, or turned off)
    voter: str | None = None  # the reader whose votes order it (their address key)
    notes: tuple[str, ...] = ()  # the fetch's notes about its keywords (a bound hit)

    @property
    def personal(self) -> bool:
        """Tell whether hardly anyone else gets this digest (made when sent)."""
        return self.own is not None or self.voter is not None

    def dumps(self) -> str:
        """Return the order as compact JSON."""
        found: dict[str, Any] = {"order": ORDER, "topics": self.topics, "abstracts": self.abstracts}
        optional: dict[str, Any] = {
            "since": self.since,
            "resumed": self.resumed.isoformat() if self.resumed else None,
            "own": self.own,
            "voter": self.voter,
            "notes": self.notes,
        }
        found.update((k, v) for k, v in optional.items() if v is not None and v != ())
        return json.dumps(found, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str, edition_id: int = 0) -> Order:
        """Return the order stored as `text`; raise BadOrder (naming the edition) if it is of
        another layout or damaged."""
        try:
            data = json.loads(text)
            if data.get("order") != ORDER:
                raise BadOrder(
                    f"edition {edition_id}: its order is of layout {data.get('order')!r}, this "
                    f"digest reads layout {ORDER}: send the queue with the version that planned it"
                )
            resumed, own = data.get("resumed"), data.get("own")
            return cls(
                tuple(data["topics"]),
                int(data["since"]) if data.get("since") is not None else None,
                str(data["abstracts"]),
                date.fromisoformat(resumed) if resumed else None,
                tuple(own) if own is not None else None,
                data.get("voter"),
                tuple(data.get("notes", ())),
            )
        except BadOrder:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadOrder(f"edition {edition_id}: its order cannot be read ({exc})") from exc


def is_order(text: str) -> bool:
    """Tell whether a stored edition's recipe column holds an order (else a recipe)."""
    return text.startswith(_START)
