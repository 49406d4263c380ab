"""The sandbox's own side: a stand-in for an external payment provider, living in this process.

It has what a real provider has: a hosted pay page (``views.sandbox_pay``), a server-side status
look-up (``views.sandbox_payment_api``) and signed webhooks (``server.sign_event``). Our side of it,
the client that opens payments and re-verifies them, is the gateway ``payments.gateways.sandbox``:
two roles, two names.
"""
