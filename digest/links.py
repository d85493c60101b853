"""Every address digest writes: the reading room's pages, an email's signed links, the static site.

One `Links` knows the site's base_url and the secret. Its pages are absolute (under base_url: what
an email links to), root-relative (`served()`: the live pages link to each other as '/topics/x'),
or files of the static site (`static_site()`, `seen_from(name)`: relative, '../index.html').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from urllib.parse import quote, urlencode

from .tokens import make_confirm_token, manage_token, unsubscribe_token, vote_signer


class Links:
    """Where each page lives, and the signed links an email carries."""

    def __init__(
        self,
        base_url: str,
        secret: bytes | None = None,
        *,
        root: str | None = None,
        static: bool = False,
    ):
        self.base_url, self.secret = base_url, secret
        self.root = base_url if root is None else root  # what comes before a page's path
        self.static = static

    def served(self) -> Links:
        """Return the live site's links between its own pages ('/topics/x', no host)."""
        return Links(self.base_url, self.secret, root="")

    def absolute(self) -> Links:
        """Return the pages under base_url, as an email or a feed's id links to them."""
        return Links(self.base_url, self.secret)

    def static_site(self) -> Links:
        """Return the static site's file names, from its folder's root ('topics/x/index.html')."""
        return Links(self.base_url, root="", static=True)

    def seen_from(self, name: str) -> Links:
        """Return the static site's links relative to its file `name` ('topics/gnn/index.html')."""
        return Links(self.base_url, root="../" * name.count("/"), static=True)

    # --- the reading room's pages --------------------------------------------------------------

    def _to(self, path: str, page: int = 1) -> str:
        if not self.static:
            return f"{self.root}/{path}" + (f"?page={page}" if page > 1 else "")
        name = "index.html" if page == 1 else f"page-{page}.html"
        return f"{self.root}{path}/{name}" if path else f"{self.root}{name}"

    def home(self) -> str:
        """Return the index page."""
        return self._to("")

    def topic(self, slug: str, page: int = 1) -> str:
        """Return a topic's page."""
        return self._to(f"topics/{slug}", page)

    def day(self, day: date, topics: Sequence[str] = (), page: int = 1) -> str:
        """Return a day's page, or its page for a set of topics."""
        # A static site's links spell '+' as %2B: some hosts (S3) read a '+' in a path as a space.
        joined = ("%2B" if self.static else "+").join(topics)
        return self._to(f"days/{day.isoformat()}" + (f"/{joined}" if topics else ""), page)

    def feed(self, slug: str | None = None) -> str:
        """Return the Atom feed of a topic, or of everything."""
        return f"{self.root}{'/' if not self.static else ''}feeds/{slug or 'all'}.atom"

    def feed_id(self, slug: str | None = None) -> str:
        """Return a feed's permanent id: its address under base_url, without '.atom'."""
        return f"{self.base_url}/feeds/{slug or 'all'}"

    def search(self) -> str | None:
        """Return the search page (none in a static site)."""
        return None if self.static else f"{self.root}/search"

    def search_page(self, text: str, page: int) -> str:
        """Return a page of a search's results."""
        return f"{self.root}/search?{urlencode({'q': text, 'page': page})}"

    def signup(self) -> str:
        """Return the sign-up form: on the live site, or on base_url from the static site."""
        return f"{self.base_url}/subscribe" if self.static else f"{self.root}/subscribe"

    # --- an email's signed links -----------------------------------------------------------------

    def _secret(self) -> bytes:
        if self.secret is None:
            raise ValueError("signed links need the secret: build Links(base_url, secret)")
        return self.secret

    def unsubscribe(self, email: str) -> str:
        """Return an address's one-click unsubscribe link: it only unsubscribes, never expires."""
        return f"{self.base_url}/unsubscribe?token={unsubscribe_token(self._secret(), email)}"

    def unsubscribe_page(self, email: str, version: int) -> str:
        """Return the unsubscribe link of an email's body: the one-click link, and its manage
        link beside it (the body shows that one anyway), so the page that asks "unsubscribe?"
        can offer the person's own page instead. List-Unsubscribe carries only the first."""
        manage = manage_token(self._secret(), email, version)
        return f"{self.unsubscribe(email)}&manage={manage}"

    def manage(self, email: str, version: int) -> str:
        """Return the link to an address's own page, at the version of their links now
        (Store.link_version): signing out raises it, and the links of older versions fail."""
        return f"{self.base_url}/manage?token={manage_token(self._secret(), email, version)}"

    def mine(
        self, email: str, version: int, day: date | None = None, since: date | None = None
    ) -> str:
        """Return the link to an address's page of their own topics' papers (signed with their
        manage link's token: personal, and revoked with it): that `day`'s, or since `since`."""
        token = manage_token(self._secret(), email, version)
        return f"{self.base_url}/mine?token={token}" + self.mine_query(day, since)

    @staticmethod
    def mine_query(day: date | None, since: date | None = None, topic: str | None = None) -> str:
        """Return what follows the token in a link to a reader's page of their papers: its days,
        and the keyword (by its slug) it shows instead of their own topics."""
        query = f"&day={day.isoformat()}" if day else ""
        query += f"&since={since.isoformat()}" if since else ""
        return query + (f"&topic={topic}" if topic else "")

    def confirm(self, nonce: str, expires: datetime) -> str:
        """Return a sign-up's confirmation link, valid until `expires`."""
        return f"{self.base_url}/confirm?token={make_confirm_token(self._secret(), nonce, expires)}"

    def feedback(self, paper_id: str, vote: str, token: str) -> str:
        """Return the link that votes `vote` ("up": more like this, "down": less) on a paper
        with a vote token (see vote_tokens); an email's body carries a placeholder token.

        All in the path, the paper last (an old arXiv id has a '/'): every paper of an email
        has two, and a query's '&amp;'s would cost 50 bytes a paper in the HTML part.
        """
        return f"{self.base_url}/feedback/{vote}/{token}/{quote(paper_id, safe='/')}"

    def vote_tokens(self, email: str, version: int) -> Callable[[str, str], str]:
        """Return sign(paper_id, vote): an address's vote tokens at the version of their links
        now (signing out raises it, and the vote links of older versions fail, as manage links
        do)."""
        return vote_signer(self._secret(), email, version)

    def vote(self, email: str, version: int, paper_id: str, vote: str) -> str:
        """Return an address's link that votes `vote` on a paper (for a page of their own)."""
        return self.feedback(paper_id, vote, self.vote_tokens(email, version)(paper_id, vote))
