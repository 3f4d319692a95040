import importlib.util
from pathlib import Path

from odoo.tests import TransactionCase, tagged

MIGRATIONS = Path(__file__).parents[1] / "migrations"


def load_migration(version, name):
    path = MIGRATIONS / version / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bookconnect_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("post_install", "-at_install", "bookconnect")
class TestCronTargets(TransactionCase):
    def test_existing_crons_are_pointed_at_their_services(self):
        migration = load_migration("18.0.2.0.0", "post-cron-targets")
        session_model = self.env["ir.model"]._get_id("bookconnect.therapy.session")
        crons = {
            xml_id: self.env.ref(f"bookconnect_therapy.{xml_id}")
            for xml_id in migration.CRON_TARGETS
        }
        for cron in crons.values():
            # as a database installed before the services existed has them
            cron.write({"model_id": session_model, "code": "model._old()"})
        migration.migrate(self.env.cr, "18.0.1.1.0")
        self.env.invalidate_all()
        for xml_id, (model, code) in migration.CRON_TARGETS.items():
            with self.subTest(cron=xml_id):
                self.assertEqual(crons[xml_id].model_id.model, model)
                self.assertEqual(crons[xml_id].code, code)
                self.assertTrue(hasattr(self.env[model], code[len("model.") : -2]))
