"""Seller events: what happened to a seller's orders and products, told to the seller's systems
(outgoing webhooks). Not the gateways' incoming events, which are ``payments``'.

- ``outbox``: an event is written in the transaction that caused it (``order_events`` for orders).
- ``delivery``: after commit it is fanned out to the receiving URLs and sent, signed per Standard
  Webhooks, retried on its schedule; a sweeper finds what a lost task left undone.
- ``endpoints``: the seller's endpoints and secrets.
- ``api``: the seller's API over all of it.

Every attempt goes through the one outbound client (``marketplace.core.outbound_http``): https
only, public addresses only (checked when an endpoint or an order's ``webhook_urls`` is saved, and
again on the socket of each attempt, so a DNS answer that changes in between cannot reach an
internal address), no redirects, timeouts, a capped answer, and one neutral error text.
``WEBHOOK_ALLOW_PRIVATE_URLS`` (local development and tests only) lifts the address rules.
"""
