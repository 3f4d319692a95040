"""How Odoo's web client reads a view's arch, and opens the views that show figures rather
than records (calendar, pivot, graph): helpers of ``web_client.WebClient``."""

from datetime import date, datetime, time, timedelta

from odoo.osv import expression

SUBVIEW_TAGS = ("list", "kanban", "form", "calendar", "graph", "pivot")
X2MANY_TAG_WIDGETS = ("many2many_tags", "many2many_avatar_user", "many2many_tags_avatar")


def _is_true(expression_text):
    return expression_text in ("1", "True", "true")


def field_nodes(node, tag="field"):
    """The ``<field>`` (or ``tag``) nodes of a view, not those of the sub-views its fields
    contain."""
    for child in node:
        if not isinstance(child.tag, str) or child.tag == "groupby":
            continue
        if child.tag == tag:
            yield child
        if child.tag != "field":
            yield from field_nodes(child, tag)


def fields_spec(view_node, model_name, models):
    """The field specification the web client sends for a view: many2one fields with their
    ``display_name``, x2many fields with the specification of the sub-view they show."""
    model_fields = models[model_name]["fields"]
    spec = {}
    for node in field_nodes(view_node):
        name = node.get("name")
        info = model_fields.get(name)
        if not info:
            continue
        entry = spec.setdefault(name, {})
        invisible = _is_true(node.get("invisible") or "")
        if info["type"] in ("many2one", "reference"):
            entry.setdefault("fields", {})
            if not invisible:
                entry["fields"]["display_name"] = {}
        elif info["type"] in ("one2many", "many2many") and not invisible:
            subviews = [child for child in node if child.tag in SUBVIEW_TAGS]
            mode = (node.get("mode") or "list").split(",")[0]
            subview = next(
                (v for v in subviews if v.tag == mode), subviews[0] if subviews else None
            )
            if subview is not None:
                entry["fields"] = fields_spec(subview, info["relation"], models)
                entry["limit"] = int(subview.get("limit") or 40)
            elif node.get("widget") in X2MANY_TAG_WIDGETS:
                entry["fields"] = {"display_name": {}}
    return spec


def raw_values(values):
    """Record values as the web client evaluates modifiers with: ids, not dicts."""
    result = {}
    for name, value in values.items():
        if isinstance(value, dict):
            result[name] = value.get("id") or False
        elif isinstance(value, list):
            result[name] = [v.get("id") if isinstance(v, dict) else v for v in value]
        else:
            result[name] = value
    return result


class ChartViews:
    """The calendar, pivot and graph views, opened with the calls the web client makes. Needs
    ``self.call(where, function, *args, **kwargs)``."""

    def _open_calendar(self, label, model, arch, models, domain, groupby):
        start_field = arch.get("date_start")
        stop_field = arch.get("date_stop") or start_field
        today = datetime.combine(date.today(), time())
        range_domain = [
            (start_field, "<=", today + timedelta(days=7)),
            (stop_field, ">=", today - timedelta(days=7)),
        ]
        names = {
            arch.get(attr)
            for attr in ("date_start", "date_stop", "date_delay", "color", "all_day")
            if arch.get(attr)
        }
        names.update(node.get("name") for node in field_nodes(arch))
        model_fields = models[model._name]["fields"]
        self.call(
            f"{label}: search_read",
            model.search_read,
            expression.AND([domain, range_domain]),
            sorted(names & set(model_fields)),
        )

    def _measure_specs(self, arch, model_fields):
        specs = ["__count"]
        for node in field_nodes(arch):
            name = node.get("name")
            if node.get("type") != "measure" or name not in model_fields:
                continue
            info = model_fields[name]
            aggregator = "count_distinct" if info["type"] == "many2one" else info.get("aggregator")
            specs.append(f"{name}:{aggregator or 'sum'}")
        return specs

    @staticmethod
    def _groupby(node):
        interval = node.get("interval")
        return f"{node.get('name')}:{interval}" if interval else node.get("name")

    def _open_pivot(self, label, model, arch, models, domain, groupby):
        measures = self._measure_specs(arch, models[model._name]["fields"])
        rows = [self._groupby(n) for n in field_nodes(arch) if n.get("type") == "row"]
        cols = [self._groupby(n) for n in field_nodes(arch) if n.get("type") == "col"]
        rows = groupby or rows
        for i in range(len(rows) + 1):
            for j in range(len(cols) + 1):
                self.call(
                    f"{label}: read_group by {rows[:i] + cols[:j]}",
                    model.read_group,
                    domain,
                    measures,
                    rows[:i] + cols[:j],
                    lazy=False,
                )

    def _open_graph(self, label, model, arch, models, domain, groupby):
        measures = self._measure_specs(arch, models[model._name]["fields"])[:2]
        groupbys = groupby or [
            self._groupby(n) for n in field_nodes(arch) if n.get("type") != "measure"
        ]
        self.call(
            f"{label}: web_read_group",
            model.with_context(fill_temporal=True).web_read_group,
            domain,
            measures,
            groupbys,
            lazy=False,
        )
