"""Calling user code from a flow: Python functions by dotted path, or HTTP webhooks.

A handler receives a `HandlerContext` and returns a mapping (or None):
- as a slot validator (`rule: handler`): `{"ok": false, "message": "..."}` to refuse the value,
  or a plain string (the refusal message); None or `{"ok": true}` accepts it;
- on completion: any fields, which `next` conditions read as `result.<field>`, plus the
  reserved keys `say` (words to speak), `clear` (slots to ask again), `set` (slots to fill).
Functions may be sync or async. A webhook gets the same information as a JSON POST and answers
with the same JSON mapping; a timeout, a non-2xx status or invalid JSON is an error, which the
form's `on_complete.on_error` (if any) turns into a transition.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from loguru import logger

from app.brain.speech import json_value
from app.errors import FlowRuntimeError
from app.flows.checks import resolve_function
from app.flows.model import Handler
from app.store import OpeningHours, Store


@dataclass
class HandlerContext:
    """What a handler can see and touch."""

    call_id: str
    node: str
    slots: Mapping[str, Any]
    data: Mapping[str, Any]
    hours: OpeningHours | None
    store: Store
    now: datetime
    state: dict[str, Any]  # per-call scratch shared by all handlers (e.g. a booking id)
    slot: str | None = None  # for validators: the slot being checked
    value: Any = None
    cart: Any = None  # app.flows.cart.Cart of a flow with a menu
    outcome: dict[str, Any] | None = field(default=None)

    def set_outcome(self, outcome: dict[str, Any]) -> None:
        """Record what the call achieved (a booking, an order); reported by `chat --json` and stored."""
        self.outcome = outcome


async def call_handler(handler: Handler, ctx: HandlerContext) -> dict[str, Any]:
    if handler.function:
        function = resolve_function(handler.function)
        if function is None:
            raise FlowRuntimeError(f"handler '{handler.function}' does not resolve")
        return _as_result(await _call(function, ctx))
    assert handler.webhook is not None  # the model guarantees one of the two
    return await _post(handler, ctx)


async def _call(function: Callable, ctx: HandlerContext) -> Any:
    result = function(ctx)
    if inspect.isawaitable(result):
        result = await result
    return result


def _as_result(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, str):
        return {"ok": False, "message": result}
    if isinstance(result, Mapping):
        return dict(result)
    raise FlowRuntimeError(f"a handler must return a mapping, a string or None, not {type(result).__name__}")


async def _post(handler: Handler, ctx: HandlerContext) -> dict[str, Any]:
    hook = handler.webhook
    assert hook is not None
    payload = {
        "call_id": ctx.call_id,
        "node": ctx.node,
        "slots": {k: json_value(v) for k, v in ctx.slots.items()},
        "slot": ctx.slot,
        "value": json_value(ctx.value),
        "now": ctx.now.isoformat(timespec="seconds"),
        "cart": ctx.cart.as_json() if ctx.cart is not None else None,
    }
    try:
        timeout = aiohttp.ClientTimeout(total=hook.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(hook.url, json=payload, headers=hook.headers) as response:
                if response.status // 100 != 2:
                    raise FlowRuntimeError(f"webhook {hook.url} answered HTTP {response.status}")
                body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise FlowRuntimeError(f"webhook {hook.url} failed: {type(e).__name__} {e}") from e
    try:
        result = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as e:
        raise FlowRuntimeError(f"webhook {hook.url} returned invalid JSON") from e
    if not isinstance(result, dict):
        raise FlowRuntimeError(f"webhook {hook.url} must return a JSON object")
    logger.debug(f"webhook {hook.url} -> {result}")
    return result
