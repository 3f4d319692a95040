from . import test_core_intervals
from . import test_core_pricing
from . import test_billing_policy
