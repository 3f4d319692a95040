from . import call_events
from . import videocall
from . import portal
