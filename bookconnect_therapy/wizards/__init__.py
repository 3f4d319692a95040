from . import bookconnect_session_correct
from . import bookconnect_session_refund
from . import bookconnect_fee_waive
