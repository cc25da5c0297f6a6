"""Signed, expiring ack links (kvitteringslinks): the token names the alert and the delivery it was sent in.

Single use is the repository's job (used_ack_links); signing and expiry are itsdangerous'.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


@dataclass(frozen=True, slots=True)
class AckClaim:
    alert_id: uuid.UUID
    delivery_id: uuid.UUID
    recipient: str


class InvalidLink(Exception):
    """The link is forged, damaged or expired; the message says which, in Danish, for the page."""


class AckLinks:
    def __init__(self, secret: str, base_url: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="notify-ack-link")
        self._base = base_url.rstrip("/")
        self._max_age = max_age_seconds

    def token(self, alert_id: uuid.UUID, delivery_id: uuid.UUID, recipient: str) -> str:
        return str(self._serializer.dumps({"a": str(alert_id), "d": str(delivery_id), "r": recipient}))

    def url(self, alert_id: uuid.UUID, delivery_id: uuid.UUID, recipient: str) -> str:
        return f"{self._base}/v1/alerts/{alert_id}/ack-link?token={self.token(alert_id, delivery_id, recipient)}"

    def read(self, token: str) -> AckClaim:
        try:
            data = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired as exc:
            raise InvalidLink("Linket er udløbet. Kvittér i konsollen i stedet.") from exc
        except BadSignature as exc:
            raise InvalidLink("Linket er ikke gyldigt.") from exc
        try:
            return AckClaim(uuid.UUID(data["a"]), uuid.UUID(data["d"]), str(data["r"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidLink("Linket er ikke gyldigt.") from exc
