# shellcheck shell=bash
# Database helpers shared by run.sh, test.sh and bench.sh. Sourced after common.sh.

# Name of the template database holding the addon's dependencies (and $2 extra modules),
# keyed by the Odoo source and the module list so that a change rebuilds it.
template_name() {
  local demo=$1 modules=$2 key
  key=$( { cat "$(odoo_src)/.odoo-commit" 2>/dev/null || odoo_src; echo "$modules"; } | sha256sum | cut -c1-10)
  echo "bookconnect_tmpl_${demo}_${key}"
}

# Creates (once) a template database with the given modules installed.
#   ensure_template demo|nodemo MODULES  -> prints the template's name
ensure_template() {
  local demo=$1 modules=$2 name
  name=$(template_name "$demo" "$modules")
  if db_exists "$name"; then echo "$name"; return; fi
  local partial=${name}_partial logfile=$STATE/logs/$name.log
  mkdir -p "$STATE/logs"
  drop_db "$partial"
  log "building template database $name ($modules; about a minute, once)"
  local demo_flag=()
  [ "$demo" = nodemo ] && demo_flag=(--without-demo=all)
  odoo_bin -d "$partial" -i "$modules" "${demo_flag[@]}" --stop-after-init --no-http \
    --log-level=warn --logfile="$logfile" ||
    die "could not build the template $name; see $logfile"
  psql -d postgres -qc "ALTER DATABASE \"$partial\" RENAME TO \"$name\""
  local fs=$DATA_DIR/filestore
  [ -d "$fs/$partial" ] && mv "$fs/$partial" "$fs/$name"
  echo "$name"
}

# Copies a template database and its filestore to a new database.
clone_db() {
  local template=$1 target=$2 fs=$DATA_DIR/filestore
  drop_db "$target"
  createdb -T "$template" "$target"
  mkdir -p "$fs"
  if [ -d "$fs/$template" ]; then cp -r "$fs/$template" "$fs/$target"; fi
}

drop_db() {
  dropdb --if-exists --force "$1" 2>/dev/null || dropdb --if-exists "$1"
  rm -rf "$DATA_DIR/filestore/$1"
}
