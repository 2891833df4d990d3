"""accounts/utils.py: the phone helpers every app's services and selectors share."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.utils import clean_phone, search_q


def test_clean_phone_normalizes_keeps_empty_and_names_the_field_it_refuses():
    assert clean_phone("+254 712-345-678") == "254712345678"
    assert clean_phone("") == ""
    with pytest.raises(ValidationError) as refused:
        clean_phone("", required=True)
    assert set(refused.value.message_dict) == {"phone"}
    with pytest.raises(ValidationError) as refused:
        clean_phone("12ab", field="contact_phone")
    assert set(refused.value.message_dict) == {"contact_phone"}


def test_search_q_matches_the_field_or_the_phone_digits_without_the_trunk_zero():
    assert search_q("  ", "username") is None
    assert str(search_q("amy", "username")) == "(AND: ('username__icontains', 'amy'))"
    query = str(search_q("0712 345", "provider_reference"))
    assert "('provider_reference__icontains', '0712 345')" in query
    assert "('phone__contains', '712345')" in query
