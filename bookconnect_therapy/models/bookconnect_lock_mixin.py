import logging

import psycopg2

from odoo import models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)


class BookconnectLockMixin(models.AbstractModel):
    """Claim rows for one worker: what a sweep, a job or a click is about to bill or end is
    locked first, so that two workers never act on the same row twice."""

    _name = "bookconnect.lock.mixin"
    _description = "Therapy rows claimed by one worker"

    def _lock_in_states(self, states):
        """Lock the records of ``self`` still in one of ``states`` and return them; skip
        those another transaction holds or changed meanwhile (it is handling them).

        :param states: tuple of values of the ``state`` field.
        """
        if not self.ids:
            return self.browse()
        self.flush_recordset(["state"])
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    SQL(
                        "SELECT id FROM %s WHERE id IN %s AND state IN %s"
                        " FOR NO KEY UPDATE SKIP LOCKED",
                        SQL.identifier(self._table),
                        tuple(self.ids),
                        tuple(states),
                    ),
                    # Expected under load and handled below: not an error for the log.
                    log_exceptions=False,
                )
                ids = {row[0] for row in self.env.cr.fetchall()}
        except psycopg2.errors.SerializationFailure:
            _logger.info(
                "%s %s changed concurrently; another worker has them", self._name, self.ids
            )
            return self.browse()
        self.invalidate_recordset(["state"])
        return self.filtered(lambda record: record.id in ids)
