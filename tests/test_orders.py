"""Orders: what planning decides for a personal digest, kept as JSON (made when sent:
test_personal_sends)."""

from __future__ import annotations

from datetime import date

import pytest

from digest.orders import BadOrder, Order, is_order


def test_an_order_reads_back_as_it_was_written():
    full = Order(
        ("gnn", "llm"), 3, "full", date(2025, 11, 20), ("au:Müller", "x -y"), "ada@x", ("n",)
    )
    plain = Order(("gnn",), None, "snippet")
    for order in (full, plain):
        assert Order.loads(order.dumps()) == order and is_order(order.dumps())
    assert full.personal and not plain.personal
    assert "Müller" in full.dumps() and len(plain.dumps()) < 60  # compact: empty parts left out
    assert not is_order('{"format":1,"abstracts":"full"}')  # a recipe


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"order":2,"topics":[],"abstracts":"full"}', "layout 2"),
        ('{"order":1,"abstracts":"full"}', "cannot be read"),
        ('{"order":1,"topics":[],"abstracts":"full","resumed":"20/11"}', "cannot be read"),
        ("{", "cannot be read"),
    ],
)
def test_an_order_of_another_layout_or_damaged_is_refused_naming_its_edition(text, says):
    with pytest.raises(BadOrder, match=f"edition 7: .*{says}"):
        Order.loads(text, 7)
