"""queue_job's test helpers (18.0.3 on) register their patcher in ``SETATTR_SOURCES``, a table
of odoo.tests.common that Odoo 18.0 releases before it lack: give them an empty one to fill."""

from odoo.tests import common as odoo_tests_common

odoo_tests_common.__dict__.setdefault("SETATTR_SOURCES", {})
