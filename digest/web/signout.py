"""Sign out all my links: a person revokes their manage links, and a fresh one is mailed."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from ..links import Links
from ..mail import Email, greeting, render_email
from ..store import Store
from .mailer import Mailer
from .preferences import Preferences
from .signed import mask

log = logging.getLogger(__name__)

PREFIX = "links."  # the nonce of a fresh manage link's email: 'links.<token id>.<random>'
KIND = "new manage link"


class SignOut:
    """POST /manage/signout: raise the version of a person's manage links, mail the new one."""

    def __init__(self, preferences: Preferences, mailer: Mailer | None = None):
        self.preferences = preferences
        self.endpoint = preferences.endpoint
        self.own = mailer is None  # no sign-up form: this one sends the web's emails
        self.mailer = Mailer(self.endpoint, self.compose) if mailer is None else mailer
        self.mailer.route(PREFIX, self.compose)

    def install(self, app: web.Application) -> None:
        """Answer the route; with a mailer of its own, send what waited and finish on stop."""
        app.add_routes([web.post("/manage/signout", self.sign_out)])
        if self.own:
            smtp = self.endpoint.settings.smtp
            wait = (smtp.timeout if smtp else 5.0) * 2
            app.on_startup.append(lambda app: self.mailer.resume())
            app.on_cleanup.append(lambda app: self.mailer.close(wait))

    async def sign_out(self, request: web.Request) -> web.Response:
        """Revoke every manage link of the person (this one too); mail them a new one."""
        posted = await self.preferences.posted(request)
        if posted is None:
            return self.preferences.links.refused()
        link, _, genuine = posted
        now = self.endpoint.clock()

        def revoke(store: Store) -> tuple[int, str | None]:
            email = self.preferences.signed.manager(store, link)
            if email is None:
                return 400, None
            if not genuine:
                return 403, None
            store.revoke_links(email, now)
            return 200, email

        status, email = await self.endpoint.write(revoke)
        if email is None:
            refused = self.preferences.links.refused()
            return refused if status == 400 else self.endpoint.error_page(status)
        log.info("signed out the manage links of %s at their request", mask(email))
        nonce = f"{PREFIX}{link.token_id}.{secrets.token_urlsafe(9)}"
        sent = await self.mailer.add(nonce, KIND, mask(email))
        return self.endpoint.page("signed_out", masked=mask(email), sent=sent)

    def compose(self, store: Store, nonce: str) -> Email | None:
        """Compose the email with a fresh manage link, at the version of their links now;
        None if the person is gone (their data deleted since)."""
        if not nonce.startswith(PREFIX):
            return None  # a sign-up's, left by a form since turned off
        details = store.recipient_details(nonce.split(".")[1])
        if details is None:
            return None
        email, name, _, _ = details
        settings = self.endpoint.settings
        links = Links(settings.base_url, self.endpoint.secret)
        context = {
            "list_name": settings.name,
            "greeting": greeting(name),
            "manage_url": links.manage(email, store.link_version(email)),
            "unsubscribe_url": links.unsubscribe(email),
        }
        return render_email(self.endpoint.renderer.env, "links", email, name, KIND, context)
