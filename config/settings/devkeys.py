"""Development and test keys: published with the source, so never a secret anywhere else.

local.py and test.py take their keys from here; config.checks refuses them in production.
"""

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
TEST_SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
DEV_PUSHER_APP_ID = "100001"
DEV_PUSHER_APP_KEY = "hotspot-local-key"
DEV_PUSHER_APP_SECRET = "hotspot-local-secret-not-for-production"
TEST_PUSHER_APP_ID = "4242"
TEST_PUSHER_APP_KEY = "test-key"
TEST_PUSHER_APP_SECRET = "test-secret-0123456789"

# Setting name → values that must not be used where they protect something real.
PUBLISHED = {
    "SECRET_KEY": {DEV_SECRET_KEY, TEST_SECRET_KEY},
    "PUSHER_APP_KEY": {DEV_PUSHER_APP_KEY, TEST_PUSHER_APP_KEY},
    "PUSHER_APP_SECRET": {DEV_PUSHER_APP_SECRET, TEST_PUSHER_APP_SECRET},
}
