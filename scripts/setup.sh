#!/usr/bin/env bash
# Prepares everything the product needs on this machine; safe to re-run, seconds when done.
#   1. finds Odoo 18.0 ($ODOO_SRC, else /opt/odoo/18.0, else a shallow clone of upstream 18.0);
#   2. installs the Debian packages Odoo and the browser tests need, when missing;
#   3. builds the virtual environment (.venv) with Odoo's, the addon's and the dev requirements,
#      and the OCA modules of requirements-oca.txt (queue_job);
#   4. makes sure PostgreSQL runs and our database role exists;
#   5. writes the Odoo configuration (.state/odoo.conf).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

UPSTREAM=${BOOKCONNECT_ODOO_UPSTREAM:-https://github.com/odoo/odoo.git}
CLONE_DIR=$STATE/odoo-18.0
# Where an Odoo 18.0 source is looked for when ODOO_SRC is not set (overridable for tests).
read -r -a CANDIDATES <<<"${BOOKCONNECT_ODOO_CANDIDATES:-/opt/odoo/18.0 $CLONE_DIR}"

how_to_get_odoo() {
  cat >&2 <<EOF

Odoo 18.0 is needed and was not found. Provide it in one of these ways:
  - point ODOO_SRC at an Odoo 18.0 source tree (the folder holding odoo-bin), e.g.
        ODOO_SRC=/path/to/odoo make setup
  - or unpack the pinned snapshot at /opt/odoo/18.0:
        git clone https://github.com/Thames-C-C/odoo_community_18 /tmp/odoo18 &&
        ../shared/bin/install-odoo-source /tmp/odoo18/.git
  - or give this machine access to $UPSTREAM (the set-up then clones branch 18.0 itself).
EOF
}

is_odoo18() {
  [ -f "$1/odoo-bin" ] && [ -f "$1/odoo/release.py" ] &&
    grep -Eq '^version_info = \(18, 0,' "$1/odoo/release.py"
}

find_odoo() {
  if [ -n "${ODOO_SRC:-}" ]; then
    # An explicit choice that is wrong is an error, not a reason to look elsewhere.
    is_odoo18 "$ODOO_SRC" || { how_to_get_odoo; die "ODOO_SRC=$ODOO_SRC holds no Odoo 18.0 source"; }
    echo "$ODOO_SRC"; return
  fi
  for candidate in "${CANDIDATES[@]}"; do
    if is_odoo18 "$candidate"; then echo "$candidate"; return; fi
  done
  log "Odoo 18.0 not found locally; trying a shallow clone of $UPSTREAM (branch 18.0)"
  if timeout 20 git ls-remote --heads "$UPSTREAM" 18.0 >/dev/null 2>&1; then
    rm -rf "$CLONE_DIR.partial"
    git clone --quiet --depth 1 --branch 18.0 "$UPSTREAM" "$CLONE_DIR.partial" >&2 &&
      mv "$CLONE_DIR.partial" "$CLONE_DIR" && is_odoo18 "$CLONE_DIR" && { echo "$CLONE_DIR"; return; }
  fi
  how_to_get_odoo
  die "no Odoo 18.0 source: not at \$ODOO_SRC, not at /opt/odoo/18.0, and $UPSTREAM is out of reach"
}

install_debian_packages() {
  local wanted=(build-essential python3-dev python3-venv libpq-dev libldap2-dev libsasl2-dev
    libxml2-dev libxslt1-dev libjpeg-dev zlib1g-dev postgresql-client chromium wkhtmltopdf)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "could not install ${missing[*]}"
}

build_venv() {
  local src=$1 stamp="$VENV/.bookconnect-requirements"
  local want
  want=$(cat "$src/requirements.txt" "$REPO/requirements.txt" "$REPO/requirements-dev.txt" | sha256sum | cut -c1-16)
  if [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "building the virtual environment in $VENV (a few minutes the first time)"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  # gevent 22.10 (Odoo's pin) imports pkg_resources at run time and cbor2 5.4 needs it to build:
  # keep setuptools below 81 both installed and in every isolated build.
  local constraints=$STATE/pip-constraints.txt
  echo 'setuptools<81' >"$constraints"
  # pip up to 25 passes PIP_CONSTRAINT into build environments; newer pip reads PIP_BUILD_CONSTRAINT.
  export PIP_CONSTRAINT=$constraints PIP_BUILD_CONSTRAINT=$constraints PIP_DISABLE_PIP_VERSION_CHECK=1
  "$PY" -m pip install --quiet --upgrade pip 'setuptools<81' wheel >&2
  "$PY" -m pip install --quiet -r "$src/requirements.txt" >&2
  # Odoo's pins stay as they are: our packages must fit around them.
  "$PY" -m pip install --quiet -c "$src/requirements.txt" \
    -r "$REPO/requirements.txt" -r "$REPO/requirements-dev.txt" >&2
  echo "$want" >"$stamp"
}

install_oca_modules() {
  # OCA wheels depend on an "odoo" distribution PyPI does not have: --no-deps, their own
  # dependencies (requests for queue_job) come from requirements.txt.
  local stamp="$VENV/.bookconnect-oca" want
  want=$(sha256sum <"$REPO/requirements-oca.txt" | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing the OCA modules of requirements-oca.txt"
  "$PY" -m pip install --quiet --no-deps -r "$REPO/requirements-oca.txt" >&2
  echo "$want" >"$stamp"
}

ensure_postgres() {
  if ! pg_isready -q 2>/dev/null; then
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    [ -n "$version" ] || die "PostgreSQL is not installed (install the Debian package 'postgresql')"
    log "starting PostgreSQL $version"
    if [ "$(id -u)" -eq 0 ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start
    else
      sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
    pg_isready -q || die "PostgreSQL did not start"
  fi
  if ! psql -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    log "creating the PostgreSQL role $DB_USER"
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- createuser --superuser "$DB_USER"
    else
      sudo -u postgres createuser --superuser "$DB_USER"
    fi
  fi
}

write_config() {
  local src=$1
  mkdir -p "$DATA_DIR"
  cat >"$ODOO_CONF.tmp" <<EOF
[options]
addons_path = $src/addons,$REPO
data_dir = $DATA_DIR
db_user = $DB_USER
db_host = False
db_port = False
db_password = False
admin_passwd = ${BOOKCONNECT_ADMIN_PASSWD:-bookconnect-admin}
http_interface = 127.0.0.1
http_port = $HTTP_PORT
gevent_port = $((HTTP_PORT + 3))
list_db = True
without_demo = False

; queue_job's job runner starts in servers that load queue_job server-wide (run.sh and the system
; tests pass --load=base,web,queue_job). Requests to Stripe run in the root.stripe channel: one
; at a time per database, whatever the number of servers, workers and cron threads.
[queue_job]
channels = root:2,root.stripe:1
EOF
  mv "$ODOO_CONF.tmp" "$ODOO_CONF"
}

main() {
  mkdir -p "$STATE"
  local src
  src=$(find_odoo)
  log "Odoo 18.0 source: $src"
  install_debian_packages
  build_venv "$src"
  install_oca_modules
  ensure_postgres
  write_config "$src"
  echo "$src" >"$ODOO_SRC_FILE"
  log "set-up done (venv $VENV, config $ODOO_CONF)"
}

main "$@"
