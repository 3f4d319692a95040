from . import bookconnect_billing_policy
