{
    "name": "BookConnect Therapy",
    "summary": "Online therapy sessions: metered calls, invoices that post and get paid themselves",
    "version": "18.0.2.0.0",
    "category": "Services/Therapy",
    "license": "LGPL-3",
    "author": "BookConnect",
    "website": "https://bookconnect.example.com",
    "application": True,
    "depends": [
        "account_payment",
        "calendar",
        "mail",
        "payment_stripe",
        "portal",
        "resource",
        "uom",
    ],
    "external_dependencies": {"python": ["phonenumbers"]},
    "data": [
        "security/bookconnect_therapy_security.xml",
        "security/ir.model.access.csv",
        "data/uom_data.xml",
        "data/product_data.xml",
        "data/ir_sequence_data.xml",
        "data/ir_cron_data.xml",
        "data/mail_template_data.xml",
        "views/bookconnect_billing_policy_views.xml",
        "views/bookconnect_therapy_session_views.xml",
        "views/payment_transaction_views.xml",
        "views/bookconnect_topup_pack_views.xml",
        "views/portal_balance_templates.xml",
        "views/res_partner_views.xml",
        "views/account_move_views.xml",
        "views/bookconnect_therapy_settings_views.xml",
        "views/res_config_settings_views.xml",
        "views/res_users_views.xml",
        "views/portal_templates.xml",
        "views/bookconnect_therapy_menus.xml",
    ],
    "demo": [
        "demo/bookconnect_therapy_demo.xml",
        "demo/bookconnect_booking_demo.xml",
    ],
    "assets": {
        # Discuss, in the back office and on the call's page a client opens
        "web.assets_backend": [
            "bookconnect_therapy/static/src/discuss/**/*",
        ],
        "mail.assets_public": [
            "bookconnect_therapy/static/src/discuss/**/*",
        ],
        "web.assets_tests": [
            "bookconnect_therapy/static/src/tours/**/*",
        ],
        # Tours that go through a session's call, on Discuss's own page.
        "mail.assets_discuss_public_test_tours": [
            "bookconnect_therapy/static/src/tours/bookconnect_discuss_tours.js",
            "bookconnect_therapy/static/src/tours/bookconnect_back_office_tours.js",
        ],
    },
}
