"""The policy in plain words, checked against every combination of the options it depends on.

Each option that changes what the client pays (or must do to book) is given a value that is
easy to find in the text ("4 minutes", "¤21.00", "36 hours" ...). For every combination, each
of those values must be in the summary exactly when its option applies: named with its value
when it matters, never named when it does not.
"""

import itertools
from types import SimpleNamespace

from odoo.tests import TransactionCase, tagged

from ..models.bookconnect_policy_terms import SUMMARY_FIELDS

# Options that do not vary below; each still has a value to find when it applies.
FIXED = {
    "rate": 87.0,
    "rate_voice": 76.0,
    "rate_chat": 65.0,
    "hold_hours_before": 36,
    "charge_floor": 5.0,
    "require_card": False,
    "no_show_delay_minutes": 25,
    "review_hours": 18,
    "late_fee_fixed": 21.0,
    "late_fee_percent": 40.0,
    "no_show_fee_fixed": 33.0,
    "no_show_fee_percent": 60.0,
}
# What names each option (or each of its values) in the English summary.
MARKERS = {
    "mode:session": "A session costs",
    "mode:hour": "an hour",
    "mode:minute": "a minute",
    "rate": "¤87.00",
    "channel_rates": ("¤76.00", "¤65.00"),
    "grace": "4 minutes",
    "rounding:1": "Every started minute",
    "rounding:15": "steps of 15 minutes",
    "minimum": "30 minutes",
    "cap": "120 minutes",
    "collection:card": "charged to your saved card",
    "collection:portal": "online",
    "prepayment:hold": "held on your saved card",
    "hold_hours": "36 hours",
    "prepayment:full": "in full",
    "prepayment:balance": "prepaid balance",
    "minimum_balance": "¤12.00",
    "overrun:end": "the call ends",
    "overrun:goes_on": "the call goes on",
    "charge_floor": "¤5.00",
    "card_to_book": "need a saved card",
    "late:none": "Cancelling is free.",
    "late:fixed": "¤21.00",
    "late:percent": "40%",
    "window": "24 hours",
    "window:none": "until the session starts",
    "booking_grace": "10 minutes",
    "no_show:none": "costs nothing",
    "no_show:fixed": "¤33.00",
    "no_show:percent": "60%",
    "no_show_delay": "25 minutes",
    "waive_first": "first late cancellation",
    "review": "18 hours",
}


def price_options():
    """Mode, channel rates, grace, rounding, minimum and cap. Per session, rounding, minimum
    and cap do not apply: they keep values that must then not be named."""
    for mode, channel_rates, grace in itertools.product(
        ("session", "hour", "minute"), (False, True), (0, 4)
    ):
        common = {"mode": mode, "channel_rates": channel_rates, "grace_minutes": grace}
        if mode == "session":
            yield {
                **common,
                "rounding_increment": 15,
                "rounding_method": "half_up",
                "minimum_minutes": 30,
                "maximum_minutes": 120,
            }
            continue
        for (increment, method), minimum, cap in itertools.product(
            ((1, "up"), (15, "half_up")), (0, 30), (0, 120)
        ):
            yield {
                **common,
                "rounding_increment": increment,
                "rounding_method": method,
                "minimum_minutes": minimum,
                "maximum_minutes": cap,
            }


def payment_options(mode):
    """Collection and pre-payment (hold, in full, prepaid balance with its minimum and
    overrun). A prepaid balance is not offered per session (the policy refuses it)."""
    kinds = [("none", 12.0, "invoice"), ("hold", 12.0, "invoice"), ("full", 12.0, "invoice")]
    if mode != "session":
        kinds += [
            ("balance", minimum, overrun)
            for minimum, overrun in itertools.product((0.0, 12.0), ("end", "card", "invoice"))
        ]
    for collection, (prepayment, minimum, overrun) in itertools.product(("card", "portal"), kinds):
        yield {
            "collection": collection,
            "prepayment": prepayment,
            "minimum_balance": minimum,
            "overrun": overrun,
        }


def cancellation_options():
    """Free-cancellation window, late and no-show fee kinds, waiver of the first offence and
    the free time after booking. The waiver only matters with a fee, the booking grace only
    with a window and a late fee: otherwise they keep values that must not be named."""
    for window, late, missed in itertools.product(
        (0, 24), ("none", "fixed", "percent"), ("none", "fixed", "percent")
    ):
        any_fee = late != "none" or missed != "none"
        for waive, grace in itertools.product(
            (False, True) if any_fee else (True,),
            (0, 10) if window and late != "none" else (10,),
        ):
            yield {
                "free_cancel_hours": window,
                "late_fee_kind": late,
                "no_show_fee_kind": missed,
                "waive_first_offence": waive,
                "cancel_grace_minutes": grace,
            }


def every_combination():
    for price in price_options():
        for payment in payment_options(price["mode"]):
            for cancellation in cancellation_options():
                yield {**FIXED, **price, **payment, **cancellation}


def expected_markers(o):
    """The markers the summary of options ``o`` must contain (and no other)."""
    timed = o["mode"] != "session"
    card = o["collection"] == "card"
    prepayment = o["prepayment"]
    late, missed = o["late_fee_kind"], o["no_show_fee_kind"]
    names = {f"mode:{o['mode']}", "rate"}
    if o["channel_rates"]:
        names.add("channel_rates")
    if timed:
        names.add(f"rounding:{o['rounding_increment']}")
        if o["minimum_minutes"]:
            names.add("minimum")
        if o["maximum_minutes"]:
            names.add("cap")
    if o["grace_minutes"]:
        names.add("grace")
    # After the session: charged to the card or invoiced to pay online; with a hold, only
    # what goes beyond it (never per session); with a balance, only the overrun.
    collected = prepayment in ("none", "full") or (prepayment == "hold" and timed)
    overrun_on = prepayment == "balance" and o["overrun"] != "end"
    charged_by_card = card and (collected or (prepayment == "balance" and o["overrun"] == "card"))
    if charged_by_card:
        names |= {"collection:card", "charge_floor"}
    if (not card and collected) or (overrun_on and not charged_by_card):
        names.add("collection:portal")
    if prepayment == "hold":
        names |= {"prepayment:hold", "hold_hours", "card_to_book"}
    if prepayment == "full":
        names.add("prepayment:full")
    if prepayment == "balance":
        names.add("prepayment:balance")
        names.add("overrun:end" if o["overrun"] == "end" else "overrun:goes_on")
        if o["minimum_balance"]:
            names.add("minimum_balance")
    if o["require_card"]:
        names.add("card_to_book")
    names.add(f"late:{late}")
    if late != "none":
        if o["free_cancel_hours"]:
            names.add("window")
            if o["cancel_grace_minutes"]:
                names.add("booking_grace")
        else:
            names.add("window:none")
    names.add(f"no_show:{missed}")
    if missed != "none":
        names.add("no_show_delay")
    if late != "none" or missed != "none":
        names.add("review")
        if o["waive_first_offence"]:
            names.add("waive_first")
    return names


def marker_texts(money=None):
    """``{name: (texts,)}``; ``money`` rewrites the ``¤`` amounts (a real currency's format)."""
    return {
        name: tuple(
            money(float(text[1:])) if money and text.startswith("¤") else text
            for text in (texts if isinstance(texts, tuple) else (texts,))
        )
        for name, texts in MARKERS.items()
    }


def says(text, marker):
    """Whether ``text`` says ``marker`` on its own ("4 minutes" is not in "14 minutes")."""
    position = text.find(marker)
    while position != -1:
        if position == 0 or text[position - 1] not in "0123456789.,":
            return True
        position = text.find(marker, position + 1)
    return False


def fake_money(amount):
    return f"¤{amount:.2f}"


@tagged("post_install", "-at_install", "bookconnect")
class TestPolicySummaryCombinations(TransactionCase):
    def check(self, options, text, markers):
        expected = expected_markers(options)
        for name, texts in markers.items():
            found = all(says(text, marker) for marker in texts)
            if found != (name in expected):
                self.fail(
                    f"{name!r} {'named' if found else 'missing'} in the summary of {options}:\n"
                    f"{text}"
                )

    def test_every_combination_names_what_applies_and_nothing_else(self):
        Terms = self.env["bookconnect.policy.terms"].with_context(lang="en_US")
        markers = marker_texts()
        options_seen = set()
        count = 0
        for options in every_combination():
            sentences = Terms._sentences(SimpleNamespace(**options), fake_money)
            for sentence in sentences:
                # Whole sentences: nothing glued together, nothing upper-cased afterwards.
                if sentence[:1].islower() or not sentence.endswith("."):
                    self.fail(f"not a whole sentence: {sentence!r}")
            self.check(options, "\n".join(sentences), markers)
            options_seen.update(options)
            count += 1
        self.assertGreater(count, 50000)
        # The combinations cover every option the summary depends on.
        self.assertEqual(options_seen - {"rate"}, set(SUMMARY_FIELDS) - {"rate", "currency_id"})

    def test_the_policy_record_says_the_same_as_its_options(self):
        """A sample of the combinations through real policies: the summary reads the fields
        named above, with amounts in the policy's currency."""
        currency = self.env.company.currency_id
        policy = self.env["bookconnect.billing.policy"].create(
            {"name": "Sample", "mode": "minute", "rate": 1, "currency_id": currency.id}
        )
        markers = marker_texts(currency.format)
        for options in itertools.islice(every_combination(), 0, None, 1931):
            with self.subTest(options=options):
                policy.write(options)
                self.check(options, policy._client_summary("en_US"), markers)
