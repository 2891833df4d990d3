"""Small helpers shared by every app that shows personal data."""


def mask_phone(phone: str | None) -> str:
    """Mask a phone number for display: 254712345678 → 2547****678 (length not revealed)."""
    if not phone:
        return ""
    value = phone.strip()
    if len(value) < 8:
        return value[:2] + "****"
    return f"{value[:4]}****{value[-3:]}"


def normalize_phone(phone: str) -> str:
    """Digits only, optional leading '+' dropped; 9–15 digits (E.164 length) or ValueError."""
    value = (phone or "").strip().replace(" ", "").replace("-", "")
    if value.startswith("+"):
        value = value[1:]
    if not value.isdigit() or not 9 <= len(value) <= 15:
        raise ValueError("Enter a phone number of 9 to 15 digits, e.g. 254712345678.")
    return value
