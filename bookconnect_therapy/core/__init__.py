"""The billing engine: plain Python, no ORM.

``intervals`` measures a call (time when therapist and client were connected together),
``pricing`` turns a measured duration into an invoice quantity and amount under a policy,
``fees`` decides what cancelling or missing a session costs, ``slots`` cuts a therapist's free
time into bookable slots. The Odoo models call these functions; everything here is
deterministic and exhaustively tested on its own.
"""

from .schedules import parse_positive_ints
from .slots import (
    InvalidSlotRules,
    align_up,
    blocked_intervals,
    free_slots,
    subtract,
)
from .fees import (
    CancellationOutcome,
    cancellation_outcome,
    fee_amount,
    is_no_show,
)
from .intervals import (
    InvalidSegment,
    billable_seconds,
    intersect,
    total_seconds,
    union,
)
from .pricing import (
    InvalidRules,
    Price,
    PricingRules,
    minutes_affordable,
    price_duration,
    round_money,
    to_decimal,
)
