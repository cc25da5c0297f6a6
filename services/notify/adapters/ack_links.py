"""Signed, expiring ack links (kvitteringslinks): the token names the alert, the delivery it was sent in and the
alert's reason then (warning, breach, acute), so a warning's link cannot acknowledge the breach that superseded it.

Single use is the repository's job (used_ack_links); signing and expiry are itsdangerous'. A rotated
secret keeps the links it signed working: `previous` secrets are verified but never sign.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


@dataclass(frozen=True, slots=True)
class AckClaim:
    alert_id: uuid.UUID
    delivery_id: uuid.UUID
    recipient: str
    reason: str  # the alert's reason when the link was sent: it acknowledges that, and nothing later


class InvalidLink(Exception):
    """The link is forged, damaged or expired; the message says which, in Danish, for the page."""


class AckLinks:
    def __init__(self, secret: str, base_url: str, max_age_seconds: int, *, previous: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key of the list and accepts a signature by any of them.
        self._serializer = URLSafeTimedSerializer([*previous, secret], salt="notify-ack-link")
        self._base = base_url.rstrip("/")
        self._max_age = max_age_seconds

    def token(self, alert_id: uuid.UUID, delivery_id: uuid.UUID, recipient: str, reason: str) -> str:
        return str(self._serializer.dumps({"a": str(alert_id), "d": str(delivery_id), "r": recipient, "s": reason}))

    def url(self, alert_id: uuid.UUID, delivery_id: uuid.UUID, recipient: str, reason: str) -> str:
        token = self.token(alert_id, delivery_id, recipient, reason)
        return f"{self._base}/v1/alerts/{alert_id}/ack-link?token={token}"

    def read(self, token: str) -> AckClaim:
        try:
            data = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired as exc:
            raise InvalidLink("Linket er udløbet. Kvittér i konsollen i stedet.") from exc
        except BadSignature as exc:
            raise InvalidLink("Linket er ikke gyldigt.") from exc
        try:
            # A token without a reason (issued before reasons were signed) is refused: it could be a warning's.
            return AckClaim(uuid.UUID(data["a"]), uuid.UUID(data["d"]), str(data["r"]), str(data["s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidLink("Linket er ikke gyldigt.") from exc
