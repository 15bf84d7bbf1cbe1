"""Which runs of digits are personal data: cards, social security and phone numbers. Numbers
named as something else ("order 48213", "tracking number ...", "flight") and amounts are left."""

from __future__ import annotations

import re

from voxloop.redact import card, phone, ssn
from voxloop.redact.numbers import runs
from voxloop.redact.spans import Find, near

# words that name a number as something other than personal data
NOT_PERSONAL = frozenset(
    "order tracking invoice reference ref confirmation case ticket booking claim serial part model "
    "barcode isbn upc ean flight room gate zip postcode pin code batch version build release "
    "account item sku lot policy id".split()
)


# a count of things after the number
AMOUNT = re.compile(
    r"\s*(?:units|items|pieces|people|dollars|euros|pounds|cents|times|copies|votes|views|miles|"
    r"kilometers|kilometres|km|kg|tons|bytes|points|steps|years|days|hours|minutes|seconds|"
    r"hz|khz|mhz|ghz|ms|kb|mb|gb|percent)\b",
    re.I,
)


def find(text: str) -> list[Find]:
    found = []
    for run in runs(text):
        if len(run.digits) < 7 or text[: run.start].rstrip().endswith(("$", "€", "£")):
            continue
        if near(text, run.start, 3, NOT_PERSONAL) and not near(text, run.start, 6, ssn.CUES):
            continue
        if AMOUNT.match(text, run.end):
            continue  # "415 555 2671 units"
        if card.is_card(run, text):
            kind = "CARD"
        elif ssn.is_ssn(run, text):
            kind = "SSN"
        elif phone.is_phone(run, text):
            kind = "PHONE"
        else:
            continue
        found.append(Find(run.start, run.end, kind))
    return found
