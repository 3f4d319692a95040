/** @odoo-module **/

import { registry } from "@web/core/registry";

// Tours of the back office, one per role. They rely on the data that
// tests/test_back_office_tours.py creates, and on nothing frozen: sessions are placed
// around the real time.
const tours = registry.category("web_tour.tours");

function openApp(xmlid) {
    return [
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button:enabled",
            run: "click",
        },
        {
            content: `Open the app ${xmlid}`,
            trigger: `.o_app[data-menu-xmlid='${xmlid}']`,
            run: "click",
        },
    ];
}

function openMenu(sectionXmlid, itemXmlid) {
    return [
        {
            content: `Open the menu ${sectionXmlid}`,
            trigger: `.o_main_navbar button[data-menu-xmlid='${sectionXmlid}']`,
            run: "click",
        },
        {
            content: `Choose ${itemXmlid}`,
            trigger: `.dropdown-item[data-menu-xmlid='${itemXmlid}']`,
            run: "click",
        },
    ];
}

function confirmDialog() {
    return {
        content: "Confirm",
        trigger: ".modal:not(.o_inactive_modal) .modal-footer .btn-primary",
        run: "click",
    };
}

function openSessionRow(text) {
    return {
        content: `Open the session of ${text}`,
        trigger: `.o_list_renderer .o_data_row:contains('${text}') td[name='name']`,
        run: "click",
    };
}

tours.add("bookconnect_therapist_day", {
    steps: () => [
        {
            content: "Today's session is on the calendar",
            trigger: ".o_calendar_renderer .fc-event:contains('Casey Client')",
            run: "click",
        },
        {
            content: "Open it",
            trigger: ".o_cw_popover .o_cw_popover_edit",
            run: "click",
        },
        {
            content: "Join the call",
            trigger: ".o_form_view button[name='action_join_call']",
            run: "click",
        },
        {
            content: "The session's call opens for the therapist, on Discuss's call page",
            trigger: ".o-mail-WelcomePage, .o-mail-Discuss",
            timeout: 30000,
            run() {
                if (!window.location.pathname.startsWith("/discuss/channel/")) {
                    throw new Error(`not the call page: ${window.location.pathname}`);
                }
            },
        },
        {
            content: "Back to the sessions",
            trigger: "body",
            run: "goToUrl /odoo/action-bookconnect_therapy.bookconnect_therapy_session_action",
        },
        {
            content: "Today's session, again",
            trigger: ".o_calendar_renderer .fc-event:contains('Casey Client')",
            timeout: 30000,
            run: "click",
        },
        {
            content: "Open it",
            trigger: ".o_cw_popover .o_cw_popover_edit",
            run: "click",
        },
        {
            content: "The session is in progress",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('In progress')",
            timeout: 30000,
        },
        {
            content: "End the session",
            trigger: ".o_form_view button[name='action_end_session']",
            run: "click",
        },
        confirmDialog(),
        {
            content: "It is invoiced and charged to the client's saved card",
            trigger: ".o_form_view div[name='billing_status']:contains('Charged to the saved card')",
        },
        {
            content: "The invoice's reference and state are shown",
            trigger: ".o_form_view div[name='invoice_name']:contains('INV/')",
        },
        {
            content: "Paid",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains('Paid')",
        },
        {
            content: "Back to the sessions",
            trigger: ".o_breadcrumb .breadcrumb-item a",
            run: "click",
        },
        {
            content: "List them",
            trigger: ".o_control_panel .o_switch_view.o_list",
            run: "click",
        },
        openSessionRow("Dana Client"),
        {
            content: "The call dropped: correct the time",
            trigger: ".o_form_view button[name='action_correct_minutes']",
            run: "click",
        },
        {
            content: "The minutes billed",
            trigger: ".modal div[name='minutes'] input",
            run: "edit 45",
        },
        {
            content: "Why",
            trigger: ".modal div[name='reason'] input",
            run: "edit The call dropped; we went on by phone",
        },
        {
            content: "Correct",
            trigger: ".modal-footer button[name='action_apply']",
            run: "click",
        },
        {
            content: "The correction is on the session",
            trigger: ".o_form_view div[name='correction_reason']:contains('went on by phone')",
        },
        {
            content: "Back to the sessions",
            trigger: ".o_breadcrumb .breadcrumb-item a",
            run: "click",
        },
        openSessionRow("Kim Absent"),
        {
            content: "The client did not come",
            trigger: ".o_form_view button[name='action_mark_no_show']",
            run: "click",
        },
        confirmDialog(),
        {
            content: "A no-show, its fee in review",
            trigger: ".o_form_view div[name='billing_status']:contains('fee in review')",
        },
    ],
});

tours.add("bookconnect_manager_day", {
    steps: () => [
        ...openApp("bookconnect_therapy.bookconnect_therapy_menu_root"),
        ...openMenu(
            "bookconnect_therapy.bookconnect_therapy_menu_config",
            "bookconnect_therapy.bookconnect_therapy_settings_menu"
        ),
        {
            content: "Clients may book three weeks ahead",
            trigger: ".o_form_view div[name='bookconnect_booking_horizon_days'] input",
            run: "edit 21",
        },
        {
            content: "Save",
            trigger: ".o_form_view button[name='action_save']",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_view .o_form_saved div[name='bookconnect_booking_horizon_days'] input",
        },
        ...openMenu(
            "bookconnect_therapy.bookconnect_therapy_menu_config",
            "bookconnect_therapy.bookconnect_billing_policy_menu"
        ),
        {
            content: "Open a billing policy",
            trigger: ".o_list_renderer .o_data_row td[name='name']:contains('Tour per session')",
            run: "click",
        },
        {
            content: "Its sessions last 45 minutes",
            trigger: ".o_form_view div[name='session_minutes'] input",
            run: "edit 45",
        },
        {
            content: "Save the policy",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_view .o_form_saved",
        },
        {
            content: "All sessions",
            trigger: ".o_main_navbar [data-menu-xmlid='bookconnect_therapy.bookconnect_therapy_session_menu']",
            run: "click",
        },
        {
            content: "List them",
            trigger: ".o_control_panel .o_switch_view.o_list",
            run: "click",
        },
        {
            content: "The sessions of one therapist...",
            trigger: ".o_list_renderer .o_data_row:contains('Alex Therapist')",
        },
        {
            content: "... and of another",
            trigger: ".o_list_renderer .o_data_row:contains('Blair Therapist')",
        },
        openSessionRow("Kim Absent"),
        {
            content: "The no-show fee is in review: waive it",
            trigger: ".o_form_view button[name='action_waive_fee']",
            run: "click",
        },
        {
            content: "Why",
            trigger: ".modal div[name='reason'] input",
            run: "edit The client was in hospital",
        },
        {
            content: "Waive",
            trigger: ".modal-footer button[name='action_waive']",
            run: "click",
        },
        {
            content: "The fee is waived",
            trigger: ".o_form_view div[name='billing_status']:contains('Fee waived')",
        },
        {
            content: "Back to the sessions",
            trigger: ".o_breadcrumb .breadcrumb-item a",
            run: "click",
        },
        openSessionRow("Dana Client"),
        {
            content: "Refund the session",
            trigger: ".o_form_view button[name='action_refund']",
            run: "click",
        },
        {
            content: "The amount paid is proposed",
            trigger: ".modal div[name='amount'] input",
        },
        {
            content: "Why",
            trigger: ".modal div[name='reason'] input",
            run: "edit The call was cut short",
        },
        {
            content: "Refund",
            trigger: ".modal-footer button[name='action_refund']",
            run: "click",
        },
        confirmDialog(),
        {
            content: "The session says it was refunded",
            trigger: ".o_form_view:not(:has(.modal)) div[name='billing_status']:contains('refunded')",
        },
    ],
});

tours.add("bookconnect_accountant_day", {
    steps: () => [
        ...openApp("account.menu_finance"),
        ...openMenu("account.menu_finance_receivables", "bookconnect_therapy.account_move_bookconnect_menu"),
        {
            content: "Only the therapy sessions' invoices",
            trigger: ".o_searchview_facet:contains('Therapy sessions')",
        },
        {
            content: "Open the invoice of a session",
            trigger: ".o_list_renderer .o_data_row:contains('Casey Client') td[name='name']",
            run: "click",
        },
        {
            content: "Its line says what it is for",
            trigger: ".o_form_view div[name='invoice_line_ids'] .o_data_row",
            run() {
                // The label is the value of a field, not text of the page.
                const row = document.querySelector(
                    ".o_form_view div[name='invoice_line_ids'] .o_data_row"
                );
                const values = [...row.querySelectorAll("textarea, input")].map((el) => el.value);
                if (![row.innerText, ...values].some((text) => text.includes("Online session"))) {
                    throw new Error(`no session label on the invoice line: ${row.innerText}`);
                }
            },
        },
        {
            content: "It was paid",
            trigger: ".o_form_view div[name='invoice_payments_widget']:contains('Paid on')",
        },
        {
            content: "No clinical detail",
            trigger: ".o_form_view:not(:contains('Discussed sleep'))",
        },
        {
            content: "Other information",
            trigger: ".o_notebook a.nav-link[name='other_info']",
            run: "click",
        },
        {
            content: "The session's reference",
            trigger: ".o_form_view div[name='invoice_origin']:contains('SES/')",
        },
        ...openMenu("account.menu_finance_receivables", "account.menu_action_account_payments_receivable"),
        {
            content: "The payment is among the customer payments",
            trigger: ".o_list_renderer .o_data_row:contains('Casey Client')",
        },
    ],
});
