from . import test_core_intervals
from . import test_core_pricing
from . import test_billing_policy
from . import test_session
from . import test_metering
from . import test_invoicing
from . import test_call_events
from . import test_race
