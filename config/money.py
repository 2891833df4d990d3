"""Money and time zones of a tenant: the currencies it may choose, how an amount is written, and
which zone names are valid. The one place every page, toast, email and export formats money.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class Currency:
    code: str  # ISO 4217
    name: str
    symbol: str
    decimals: int  # ISO 4217 minor units (UGX and RWF have none)


#: The currencies a tenant can bill in: East, West and Southern Africa first, then the
#: international ones operators quote prices in. ISO 4217 codes and minor units.
CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("KES", "Kenyan shilling", "KSh", 2),
        Currency("UGX", "Ugandan shilling", "USh", 0),
        Currency("TZS", "Tanzanian shilling", "TSh", 2),
        Currency("RWF", "Rwandan franc", "FRw", 0),
        Currency("BIF", "Burundian franc", "FBu", 0),
        Currency("ETB", "Ethiopian birr", "Br", 2),
        Currency("SSP", "South Sudanese pound", "SSP", 2),
        Currency("CDF", "Congolese franc", "FC", 2),
        Currency("NGN", "Nigerian naira", "₦", 2),
        Currency("GHS", "Ghanaian cedi", "GH₵", 2),
        Currency("XOF", "West African CFA franc", "CFA", 0),
        Currency("XAF", "Central African CFA franc", "FCFA", 0),
        Currency("ZAR", "South African rand", "R", 2),
        Currency("ZMW", "Zambian kwacha", "ZK", 2),
        Currency("MWK", "Malawian kwacha", "MK", 2),
        Currency("MZN", "Mozambican metical", "MT", 2),
        Currency("BWP", "Botswana pula", "P", 2),
        Currency("EGP", "Egyptian pound", "E£", 2),
        Currency("MAD", "Moroccan dirham", "DH", 2),
        Currency("USD", "US dollar", "$", 2),
        Currency("EUR", "Euro", "€", 2),
        Currency("GBP", "Pound sterling", "£", 2),
    )
}
CURRENCY_CHOICES = [(c.code, f"{c.code} · {c.name} ({c.symbol})") for c in CURRENCIES.values()]


def validate_currency(value: str) -> None:
    if value not in CURRENCIES:
        raise ValidationError(
            "%(value)s is not a currency this platform bills in; choose one of %(codes)s.",
            params={"value": value, "codes": ", ".join(CURRENCIES)},
            code="invalid_currency",
        )


def currency_decimals(code: str) -> int:
    known = CURRENCIES.get(code)
    return known.decimals if known else 2


def format_money(amount: Any, currency: str) -> str:
    """`NGN 1,500.00`, `UGX 5,000`: the ISO code (unambiguous in every place the text goes:
    pages, toasts, SMS, emails) and the amount with its currency's decimals and thousands
    grouped (the symbols are ambiguous: "$", "R", "P"; they label the currency choices).
    """
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{currency} {amount}"
    places = currency_decimals(currency)
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{currency} {value:,.{places}f}"


@cache
def time_zone_names() -> frozenset[str]:
    """Every IANA zone name the server's zoneinfo database knows (read once)."""
    return frozenset(zoneinfo.available_timezones())


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(time_zone_names())]


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)s is not a time zone name (an IANA name such as Africa/Nairobi).",
            params={"value": value},
            code="invalid_time_zone",
        )
