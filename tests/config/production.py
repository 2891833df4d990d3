"""What a production process needs in its environment besides SECRET_KEY and the Pusher app:
the payments checks refuse to start without an encryption key and an https PUBLIC_URL
(tests/payments/test_credentials.py tests those checks). One place for the tests that start
production servers and commands."""

PAYMENTS_ENV = {
    "PUBLIC_URL": "https://hotspot.example.com",
    "PAYMENTS_ENCRYPTION_KEYS": "dGVzdC1vbmx5LXBheW1lbnRzLWtleS0wMTIzNDU2Nzg=",
}
