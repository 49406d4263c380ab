"""The secret values the embedded default (``local``) uses when none is given.

They are in the repository, so they are known to everyone: good enough for a laptop, worthless as
secrets. ``local`` takes its defaults from here and ``production`` refuses every one of them, so a
value added here is refused in production without anyone having to remember to.
"""

SECRET_KEY = "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop"
FERNET_KEYS = ["3q2-7bY0bQ3pZ5c5F3m8Xo9wq1fZcJ8HkQyGx0m7L2s="]
CODE_HASH_KEY = "dev-only-code-hash-key-0123456789abcdef"
SANDBOX_WEBHOOK_SECRET = "whsec_ZGV2LW9ubHktc2FuZGJveC13ZWJob29rLXNlY3JldA=="

# Every published value: production refuses each of them in any setting.
PUBLISHED_VALUES = frozenset({SECRET_KEY, *FERNET_KEYS, CODE_HASH_KEY, SANDBOX_WEBHOOK_SECRET})
