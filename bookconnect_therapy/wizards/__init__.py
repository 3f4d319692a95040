from . import bookconnect_session_correct
from . import bookconnect_session_refund
