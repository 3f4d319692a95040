from . import bookconnect_session_correct
