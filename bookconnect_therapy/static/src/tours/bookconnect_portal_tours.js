/** @odoo-module **/

import { registry } from "@web/core/registry";

// These tours rely on data created by the Python tests (tests/test_portal.py, test_booking.py).
const tours = registry.category("web_tour.tours");

tours.add("bookconnect_portal_booking", {
    url: "/book",
    steps: () => [
        {
            content: "Pick the therapist",
            trigger: ".o_bookconnect_therapist_card:contains('Tour Therapist') a.o_bookconnect_therapist",
            run: "click",
        },
        {
            content: "Times are shown in the client's time zone",
            trigger: "p:contains('Times are shown in Europe/London')",
        },
        {
            // The second slot: the first may fall under the notice period if the clock passes
            // a quarter hour during the tour.
            content: "Pick a free slot",
            trigger: ".o_bookconnect_slot:eq(1)",
            run: "click",
        },
        {
            content: "The confirmation shows who and when",
            trigger: ".o_bookconnect_confirm:contains('Tour Therapist') .o_bookconnect_when",
        },
        {
            content: "... and what cancelling costs, before booking",
            trigger: ".o_bookconnect_confirm .o_bookconnect_if_cancelled:contains('Cancelling')",
        },
        {
            content: "Book it",
            trigger: "button.o_bookconnect_book",
            run: "click",
        },
        {
            content: "The session is booked",
            trigger: ".o_bookconnect_booked:contains('Your session is booked')",
        },
        {
            content: "Go to My sessions",
            trigger: ".o_portal_submenu a[href='/my/sessions']",
            run: "click",
        },
        {
            content: "The new session is listed, scheduled, with its therapist",
            trigger:
                "tr.o_bookconnect_session_row:contains('Tour Therapist') .o_bookconnect_state:contains('Scheduled')",
        },
    ],
});

tours.add("bookconnect_portal_join", {
    url: "/my/sessions",
    steps: () => [
        {
            content: "My sessions offers to join the session about to start",
            trigger: ".o_bookconnect_next_session a.o_bookconnect_join[href*='/calendar/join_videocall/']",
        },
        {
            content: "Open the session",
            trigger: "tr.o_bookconnect_session_row td:first a",
            run: "click",
        },
        {
            content: "The detail page has the join button, pointing to the call",
            trigger: ".o_bookconnect_actions a.o_bookconnect_join[href*='/calendar/join_videocall/']:contains('Join the call')",
        },
    ],
});

tours.add("bookconnect_portal_cancel_late", {
    url: "/my/sessions",
    steps: () => [
        {
            content: "Open the session",
            trigger: "tr.o_bookconnect_session_row td:first a",
            run: "click",
        },
        {
            content: "Ask to cancel",
            trigger: "a.o_bookconnect_cancel",
            run: "click",
        },
        {
            content: "The fee is shown before confirming",
            trigger: ".o_bookconnect_cancel_consequence:contains('Cancelling now costs'):contains('20.00')",
        },
        {
            content: "Confirm",
            trigger: "button.o_bookconnect_cancel_confirm:contains('Cancel and pay')",
            run: "click",
        },
        {
            content: "The session is cancelled late",
            trigger: ".o_bookconnect_cancelled",
        },
        {
            content: "Its state says so",
            trigger: ".o_bookconnect_session .o_bookconnect_state:contains('Cancelled late')",
        },
        {
            content: "The fee is on the page: its amount and until when it is in review",
            trigger:
                ".o_bookconnect_money_line[data-kind='fee']:contains('20.00'):contains('In review until'):contains('may waive it')",
        },
        {
            content: "Nothing left to do on the session: no empty actions box",
            trigger: "body:not(:has(.o_bookconnect_actions))",
        },
        {
            content: "My sessions lists the fee in review",
            trigger: ".o_portal_submenu a[href='/my/sessions']",
            run: "click",
        },
        {
            content: "The cancelled session shows its fee",
            trigger: "tr.o_bookconnect_session_row:contains('20.00') .o_bookconnect_fee_state:contains('fee in review')",
        },
    ],
});

tours.add("bookconnect_portal_pay", {
    url: "/my/sessions",
    steps: () => [
        {
            content: "The invoiced session shows its invoice, waiting for payment",
            trigger: "tr.o_bookconnect_session_row .o_bookconnect_payment_state:contains('Not Paid')",
        },
        {
            content: "Open the session",
            trigger: "tr.o_bookconnect_session_row td:first a",
            run: "click",
        },
        {
            content: "Pay",
            trigger: "a.o_bookconnect_pay",
            run: "click",
        },
        {
            content: "Odoo's invoice page offers to pay now",
            trigger: "a[data-bs-target='#pay_with']:contains('Pay Now')",
            run: "click",
        },
        {
            content: "The payment dialog opens",
            trigger: "#pay_with .modal-title:contains('Pay')",
        },
    ],
});
