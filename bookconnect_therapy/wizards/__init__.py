from . import bookconnect_session_correct
from . import bookconnect_session_refund
from . import bookconnect_fee_waive
from . import bookconnect_therapy_settings
