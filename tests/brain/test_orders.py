"""Orders as cart edits, against Tony's Pizza's catalog."""

from __future__ import annotations

import pytest

from app.brain.normalize import CartEdit, Catalog, OrderLine, parse_order

CATALOG = Catalog(
    items={
        "margherita": ("margarita", "cheese pizza", "plain pizza"),
        "pepperoni": ("pepperoni pizza", "peperoni"),
        "veggie": ("vegetable", "vegetarian", "veggie pizza", "veg"),
        "garlic bread": ("garlic breads", "garlic knots"),
        "coke": ("coca cola", "cola", "coke zero", "diet coke"),
        "sprite": ("lemonade", "seven up", "7up"),
        "water": ("bottled water", "bottle of water"),
    },
    sizes={"small": ("little", "personal"), "medium": ("regular", "med"), "large": ("big", "family")},
    extras={
        "extra cheese": ("cheese", "more cheese", "double cheese"),
        "mushrooms": ("mushroom", "shrooms"),
        "olives": ("olive", "black olives"),
        "onions": ("onion", "red onion"),
        "peppers": ("pepper", "green peppers", "bell peppers"),
        "jalapenos": ("jalapeno", "jalapeños"),
    },
    sized_items=frozenset({"margherita", "pepperoni", "veggie"}),
)


def add(item: str, size: str | None = None, quantity: int = 1, extras: tuple[str, ...] = ()) -> CartEdit:
    return CartEdit("add", OrderLine(item, size, quantity, extras))


def remove(item: str, size: str | None = None) -> CartEdit:
    return CartEdit("remove", OrderLine(item, size))


def change(item: str | None, **kw) -> CartEdit:
    return CartEdit("change", OrderLine(item) if item else None, **kw)


@pytest.mark.parametrize(
    ("text", "edits"),
    [
        ("two large pepperonis and a coke", [add("pepperoni", "large", 2), add("coke")]),
        ("a medium margherita with extra mushrooms and olives", [add("margherita", "medium", 1, ("mushrooms", "olives"))]),
        ("and a medium margherita with extra mushrooms", [add("margherita", "medium", 1, ("mushrooms",))]),
        ("1 Medium, Margherita, and a Sprite.", [add("margherita", "medium"), add("sprite")]),  # Whisper puts a comma at the pause
        ("one small veggie pizza, a garlic bread and three waters", [add("veggie", "small"), add("garlic bread"), add("water", None, 3)]),
        ("a veggie pizza and garlic bread", [add("veggie"), add("garlic bread")]),
        ("a large pepperoni, extra cheese", [add("pepperoni", "large", 1, ("extra cheese",))]),
        ("a pepperoni, large", [add("pepperoni", "large")]),
        ("a large cheese pizza with no onions", [add("margherita", "large")]),
        ("a couple of cokes", [add("coke", None, 2)]),
        ("a dozen garlic knots", [add("garlic bread", None, 12)]),
        ("two 7ups", [add("sprite", None, 2)]),
        ("a big coke", [add("coke")]),
        ("remove the coke", [remove("coke")]),
        ("actually remove the coke", [remove("coke")]),
        ("no coke", [remove("coke")]),
        ("take off the garlic bread", [remove("garlic bread")]),
        ("cancel the pepperoni", [remove("pepperoni")]),
        ("remove the coke and the water", [remove("coke"), remove("water")]),
        ("get rid of the large pepperoni", [remove("pepperoni", "large")]),
        ("make the pepperoni a medium", [change("pepperoni", size="medium")]),
        ("make the margherita a large", [change("margherita", size="large")]),
        ("change the margherita to large", [change("margherita", size="large")]),
        ("change the large pepperoni to a small", [CartEdit("change", OrderLine("pepperoni", "large"), size="small")]),
        ("make that three cokes", [change("coke", quantity=3)]),
        ("actually two cokes", [change("coke", quantity=2)]),
        ("add olives to the veggie", [change("veggie", add_extras=("olives",))]),
        ("no mushrooms on the margherita", [change("margherita", remove_extras=("mushrooms",))]),
        ("take the mushrooms off the margherita", [change("margherita", remove_extras=("mushrooms",))]),
        ("swap the coke for a sprite", [remove("coke"), add("sprite")]),
        ("a sprite instead of the coke", [remove("coke"), add("sprite")]),
        ("make it a large", [CartEdit("change", None, size="large")]),
        ("hold the onions", [CartEdit("change", None, remove_extras=("onions",))]),
        ("start the order over", [CartEdit("clear")]),
        ("clear my order", [CartEdit("clear")]),
        ("cancel my whole order", [CartEdit("clear")]),
    ],
)
def test_parse_order(text, edits):
    assert parse_order(text, CATALOG) == edits


@pytest.mark.parametrize(
    "text", ["that's all", "nothing else", "no thanks", "yes", "small", "delivery please", "12 Oak Street", "I'll pick it up", "Ann Lee", ""]
)
def test_unrecognised_is_empty(text):
    assert parse_order(text, CATALOG) == []
