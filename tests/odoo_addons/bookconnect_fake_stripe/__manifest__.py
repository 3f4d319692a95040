{
    "name": "BookConnect: Stripe API on a local fake (system tests only)",
    "summary": "Sends Odoo's Stripe API calls to the fake Stripe server of the system tests",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "license": "LGPL-3",
    "author": "BookConnect",
    "depends": ["payment_stripe"],
    "post_load": "post_load",
    # Loaded with --load by the system tests, never installed in a database.
    "installable": False,
}
