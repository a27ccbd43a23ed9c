"""Month strings: parsing errors name the field and value; arithmetic across year ends."""

import pytest

from regimecast.months import add_months, month_str, months_between, parse_month


@pytest.mark.parametrize("bad", ["2024-1", "2024-13", "24-01", "", None, "2024-01-15"])
def test_parse_month_refuses_what_is_not_yyyy_mm_naming_the_field(bad):
    with pytest.raises(ValueError, match=rf"origin {bad!r}: expected a month YYYY-MM"):
        parse_month(bad, "origin")


def test_month_arithmetic_crosses_year_ends_both_ways():
    assert add_months("2024-11", 3) == "2025-02"
    assert add_months("2025-02", -14) == "2023-12"
    assert months_between("2023-12", "2025-02") == 14
    assert months_between("2025-02", "2023-12") == -14
    assert month_str(parse_month("2009-03")) == "2009-03"
    for n in range(-30, 31):
        assert months_between("2010-06", add_months("2010-06", n)) == n
