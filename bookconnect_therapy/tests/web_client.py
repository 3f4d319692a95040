"""The back office as Odoo's web client drives it, for tests.

``WebClient(env, user)`` finds the menus the user sees and opens every view of an action with
the calls the web client makes and the field specifications it builds from each view's arch:
``get_views``, ``web_search_read``, ``web_read_group``, ``search_read`` (calendar),
``read_group`` (pivot), ``web_read`` (a record's form), ``onchange`` (a new record's form), and
the window actions the form's visible buttons return. Each call runs as the user, in a
savepoint that is always rolled back; every error is collected, none stops the walk.
"""

import logging
from contextlib import closing
from datetime import date, datetime

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo.exceptions import AccessError, MissingError, UserError
from odoo.osv import expression
from odoo.tools import safe_eval as safe_eval_module
from odoo.tools.safe_eval import safe_eval

from odoo.addons.web.controllers.utils import clean_action

from .web_views import ChartViews, field_nodes, fields_spec, raw_values

_logger = logging.getLogger(__name__)

# Records of an action whose form is opened: the first one and one per state, enough to see
# every variant of the form without opening hundreds.
FORM_SAMPLE_KEY = "state"


class WebClient(ChartViews):
    """What one user sees in the back office, opened as the web client opens it."""

    def __init__(self, env, user, label, button_models=()):
        """``button_models``: the models whose forms' buttons are clicked."""
        self.env = env(user=user.id, su=False)
        self.button_models = set(button_models)
        self.user = user
        self.label = label
        self.failures = []
        self.opened = []  # (what, view type) pairs that were opened without error
        self.listed = {}  # where -> ids a list or kanban view showed
        self.context = {
            "lang": user.lang or "en_US",
            "tz": user.tz or "UTC",
            "uid": user.id,
            "allowed_company_ids": [user.company_id.id],
        }

    # ------------------------------------------------------------------
    # Calls
    # ------------------------------------------------------------------

    def call(self, where, function, *args, **kwargs):
        """Run one call as the user, rolled back; record an error as a failure."""
        with closing(self.env.cr.savepoint()):
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # every error is a finding
                self._fail(where, exc)
                return None

    def _fail(self, where, exc):
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.failures.append(f"{self.label}: {where}: {type(exc).__name__}: {first_line}")
        _logger.info("%s: %s failed", self.label, where, exc_info=True)

    def model(self, name, context=None):
        return self.env[name].with_context(**{**self.context, **(context or {})})

    def eval_context(self, **values):
        today = date.today()
        return {
            **self.context,
            "context": dict(self.context),
            "uid": self.user.id,
            "user": self.user,
            "allowed_company_ids": [self.user.company_id.id],
            "current_company_id": self.user.company_id.id,
            "active_id": False,
            "active_ids": [],
            "context_today": lambda: today,
            "current_date": today.strftime("%Y-%m-%d"),
            "today": today.strftime("%Y-%m-%d"),
            "now": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            # the modules as the web client's expression evaluator offers them
            "datetime": safe_eval_module.datetime,
            "time": safe_eval_module.time,
            "relativedelta": relativedelta,
            **values,
        }

    def evaluate(self, text, default, /, **values):
        if not text:
            return default
        if not isinstance(text, str):
            return text
        return safe_eval(text, self.eval_context(**values))

    # ------------------------------------------------------------------
    # Menus
    # ------------------------------------------------------------------

    def visible_menus(self, menus):
        """The ones of ``menus`` the user sees, as ``load_menus`` gives them to the client."""
        loaded = self.env["ir.ui.menu"].with_context(**self.context).load_menus(debug=False)
        visible_ids = {key for key in loaded if isinstance(key, int)}
        return menus.filtered(lambda menu: menu.id in visible_ids)

    def open_menu(self, menu):
        action = menu.action
        if not action or action._name != "ir.actions.act_window":
            return
        action_dict = self.call(
            f"menu {menu.complete_name}: load the action",
            lambda: clean_action(
                self.env[action._name].sudo().browse(action.id)._get_action_dict(), self.env
            ),
        )
        if action_dict:
            self.open_action(
                action_dict,
                f"menu {menu.complete_name}",
                buttons=action_dict.get("res_model") in self.button_models,
            )

    # ------------------------------------------------------------------
    # Actions and their views
    # ------------------------------------------------------------------

    def open_action(self, action, where, buttons=False, active_record=None):
        """Open a window action's views as the client does: its views and search view, then
        each view's data. ``buttons``: also follow the window actions the form's buttons
        return (one level deep)."""
        if action.get("type") != "ir.actions.act_window":
            return
        active = (
            {
                "active_id": active_record.id,
                "active_ids": active_record.ids,
                "active_model": active_record._name,
            }
            if active_record
            else {}
        )
        context = {**self.evaluate(action.get("context"), {}, **active), **active}
        domain = self.evaluate(action.get("domain"), [], **active) or []
        res_model = action["res_model"]
        views = [list(v) for v in action.get("views") or []]
        if action.get("res_id") and views and views[0][1] != "form":
            views = [[False, "form"]]
        search_view = action.get("search_view_id")
        search_id = search_view[0] if isinstance(search_view, list | tuple) else search_view
        request = [*views, [search_id or False, "search"]]
        model = self.model(res_model, context)
        loaded = self.call(
            f"{where}: get_views",
            model.get_views,
            request,
            {"toolbar": True, "load_filters": True, "action_id": action.get("id")},
        )
        if not loaded:
            return
        search_arch = etree.fromstring(loaded["views"]["search"]["arch"])
        defaults = self.call(
            f"{where}: search defaults", self._search_defaults, search_arch, context, domain
        )
        if not defaults:
            return
        domain, groupby = defaults
        self._check_search_filters(f"{where}: search", model, search_arch, domain)
        target_new = action.get("target") == "new"
        for _view_id, view_type in views:
            view = loaded["views"].get(view_type)
            if not view:
                continue
            arch = etree.fromstring(view["arch"])
            label = f"{where}: {view_type} view"
            if view_type == "form":
                self._open_form(
                    label,
                    model,
                    arch,
                    loaded["models"],
                    domain,
                    res_id=action.get("res_id"),
                    new_only=target_new,
                    buttons=buttons,
                )
            else:
                opener = getattr(self, f"_open_{view_type}", None)
                if opener:
                    opener(label, model, arch, loaded["models"], domain, groupby)
                    self.opened.append((where, view_type))

    def _search_defaults(self, arch, context, domain):
        """The domain and grouping of the ``search_default_*`` filters the action turns on."""
        domains = [domain]
        groupby = []
        for key, value in context.items():
            if not key.startswith("search_default_") or not value:
                continue
            name = key[len("search_default_") :]
            for node in arch.iter("filter", "field"):
                if node.get("name") != name:
                    continue
                if node.tag == "filter":
                    if node.get("domain"):
                        domains.append(self.evaluate(node.get("domain"), []))
                    node_context = self.evaluate(node.get("context"), {})
                    if node_context.get("group_by"):
                        groupby.append(node_context["group_by"])
                elif node.get("filter_domain"):
                    domains.append(self.evaluate(node.get("filter_domain"), [], self=value))
                else:
                    domains.append([(name, "=", value)])
        return expression.AND(domains), groupby

    def _check_search_filters(self, where, model, arch, domain):
        """Every filter and grouping of the search view, as a user picking it would."""
        for node in arch.iter("filter"):
            name = node.get("name") or node.get("string")
            if node.get("domain"):
                filter_domain = self.evaluate(node.get("domain"), [])
                self.call(
                    f"{where}: filter {name}",
                    model.search_count,
                    expression.AND([domain, filter_domain]),
                )
            node_context = node.get("context")
            if node_context and "group_by" in node_context:
                groupby = self.evaluate(node_context, {}).get("group_by")
                if groupby:
                    self.call(
                        f"{where}: group by {name}",
                        model.web_read_group,
                        domain,
                        [],
                        [groupby] if isinstance(groupby, str) else list(groupby),
                    )

    def _records_view(self, label, model, arch, models, domain, groupby, limit):
        spec = fields_spec(arch, model._name, models)
        group_by = groupby or (
            [arch.get("default_group_by")] if arch.get("default_group_by") else []
        )
        order = arch.get("default_order") or None
        if not group_by:
            result = self.call(
                f"{label}: web_search_read",
                model.web_search_read,
                domain,
                spec,
                limit=limit,
                order=order,
                count_limit=10001,
            )
            self.listed[label] = [values["id"] for values in (result or {}).get("records", [])]
            return result
        grouped = self.call(
            f"{label}: web_read_group", model.web_read_group, domain, [], group_by[:1], limit=80
        )
        for group in (grouped or {}).get("groups", [])[:10]:
            self.call(
                f"{label}: web_search_read of a group",
                model.web_search_read,
                group["__domain"],
                spec,
                limit=limit,
                order=order,
            )
        return None

    def _open_list(self, label, model, arch, models, domain, groupby):
        self._records_view(label, model, arch, models, domain, groupby, 80)

    def _open_kanban(self, label, model, arch, models, domain, groupby):
        self._records_view(label, model, arch, models, domain, groupby, 40)

    # ------------------------------------------------------------------
    # Forms
    # ------------------------------------------------------------------

    def _open_form(
        self, label, model, arch, models, domain, res_id=None, new_only=False, buttons=False
    ):
        spec = fields_spec(arch, model._name, models)
        if not res_id:  # an action on a given record opens that record only
            self.call(f"{label}: new record (onchange)", model.onchange, {}, [], spec)
            self.opened.append((label, "form new"))
        if new_only:
            return
        ids = [res_id] if res_id else self._sample_ids(label, model, domain)
        clicked, linked = set(), set()
        for record_id in ids:
            values = self.call(
                f"{label}: record {record_id} (web_read)", model.browse(record_id).web_read, spec
            )
            if not values:
                continue
            self.opened.append((label, "form"))
            if buttons:
                self._follow_buttons(label, model.browse(record_id), arch, values[0], clicked)
                self._follow_links(label, arch, models[model._name]["fields"], values[0], linked)

    def _follow_links(self, label, arch, model_fields, values, linked):
        """Open the form of each record a visible many2one field links to, as clicking the
        link does (``get_formview_action``, then the form)."""
        for node in field_nodes(arch):
            name = node.get("name")
            info = model_fields.get(name) or {}
            value = values.get(name)
            if info.get("type") != "many2one" or not isinstance(value, dict):
                continue
            if "no_open" in (node.get("options") or "") or node.get("widget") == "selection":
                continue
            target = (info["relation"], value["id"])
            if target in linked:
                continue
            where = f"{label}: link {name} to {target[0]},{target[1]}"
            with closing(self.env.cr.savepoint()):
                try:
                    if not self._visible(node, values):
                        continue
                    linked.add(target)
                    record = self.model(target[0]).browse(target[1])
                    action = clean_action(record.get_formview_action(), self.env)
                except Exception as exc:  # every error is a finding
                    self._fail(where, exc)
                    continue
            self.open_action(action, f"{where} -> form")

    def _sample_ids(self, label, model, domain):
        with closing(self.env.cr.savepoint()):
            try:
                records = model.search(domain, limit=80)
            except Exception:  # reported by the list view already
                return []
            if FORM_SAMPLE_KEY not in model._fields:
                return records[:3].ids
            sample = {}
            for record in records:
                sample.setdefault(record[FORM_SAMPLE_KEY], record.id)
            return list(dict.fromkeys([*records[:1].ids, *sample.values()]))

    def _visible(self, node, values):
        invisible = node.get("invisible")
        if not invisible:
            return True
        return not self.evaluate(invisible, False, **raw_values(values))

    def _follow_buttons(self, label, record, arch, values, clicked):
        """Click each visible button of the form once (rolled back), and open the window
        action it returns, as the web client would."""
        for node in field_nodes(arch, "button"):
            kind, name = node.get("type"), node.get("name")
            if kind not in ("object", "action") or not name or (kind, name) in clicked:
                continue
            where = f"{label}: button {name} on record {record.id}"
            with closing(self.env.cr.savepoint()):
                try:
                    if not self._visible(node, values):
                        continue
                    clicked.add((kind, name))
                    button_context = self.evaluate(node.get("context"), {}, **raw_values(values))
                    if kind == "object":
                        if name.startswith("_"):
                            self.failures.append(f"{self.label}: {where}: a private method")
                            continue
                        result = getattr(record.with_context(**button_context), name)()
                        self.opened.append((where, "button"))
                        if not isinstance(result, dict):
                            continue
                        action = clean_action(result, self.env)
                    else:
                        action = clean_action(
                            self.env["ir.actions.act_window"]
                            .sudo()
                            .browse(int(name))
                            ._get_action_dict(),
                            self.env,
                        )
                except (AccessError, MissingError) as exc:
                    self._fail(where, exc)
                    continue
                except UserError:
                    # A clear refusal for this record's state: what the user reads.
                    continue
                except Exception as exc:  # every error is a finding
                    self._fail(where, exc)
                    continue
                self.open_action(
                    action, f"{where} -> {action.get('res_model')}", active_record=record
                )
