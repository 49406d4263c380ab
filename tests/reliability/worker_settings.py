"""The reliability tests' worker settings: the test settings, with every email the worker sends
written to a folder the test reads (``RELIABILITY_MAIL_DIR``), one file per connection.

The suite's own ``locmem`` backend keeps mail in the memory of the process that sends it — the
worker's, which the test cannot see; the file backend lets the test count what was really sent.
"""

from marketplace.settings.test import *  # noqa: F403
from marketplace.settings.test import env

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = env.str("RELIABILITY_MAIL_DIR")
