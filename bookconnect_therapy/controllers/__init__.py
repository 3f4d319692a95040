from . import call_events
from . import videocall
from . import stripe
from . import balance
from . import portal
from . import booking
