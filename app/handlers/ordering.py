"""The pizza shop's handler: store the order and report it."""

from __future__ import annotations

from typing import Any

from app.flows.handlers import HandlerContext


def place_order(ctx: HandlerContext) -> dict[str, Any]:
    cart = ctx.cart
    assert cart is not None, "place_order runs in a flow with a menu"
    s = ctx.slots
    fulfilment = s["fulfilment"]
    address = s.get("address") if fulfilment == "delivery" else None
    record = ctx.store.create_order(
        call_id=ctx.call_id, items=cart.as_json(), fulfilment=fulfilment, address=address,
        name=s["name"], phone=s["phone"], total_cents=round(cart.total * 100), created_at=ctx.now,
    )  # fmt: skip
    ctx.set_outcome({
        "type": "order", "items": cart.as_json(), "fulfilment": fulfilment, "address": address,
        "name": s["name"], "phone": s["phone"], "total": cart.total,
    })  # fmt: skip
    return {"order_id": record.id}
