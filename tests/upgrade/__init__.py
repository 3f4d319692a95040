"""Helpers of the upgrade test: the previous release of the addon, taken from git history,
and Odoo shell scripts run on a database through one release or the other."""

import ast
import configparser
import json
import os
import subprocess
import tarfile
import io

from harness import CONF, LOGS, REPO, VENV_PY, odoo_src

HERE = os.path.dirname(__file__)
MANIFEST = "bookconnect_therapy/__manifest__.py"


def _version(commit):
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{MANIFEST}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return ast.literal_eval(text)["version"]


def previous_release():
    """The last commit on main's first-parent history (this branch's, without a ``main``)
    whose manifest version differs from HEAD's, and that version."""
    head = _version("HEAD")
    branch = "main"
    known = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", branch],
        capture_output=True,
        check=False,
    )
    if known.returncode:
        branch = "HEAD"
    commits = subprocess.run(
        ["git", "-C", str(REPO), "rev-list", "--first-parent", branch],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for commit in commits:
        version = _version(commit)
        if version != head:
            return commit, version
    raise RuntimeError(f"No release before {head} in the history")


def previous_release_addons(commit, folder):
    """Extract the addon as it was at ``commit`` into ``folder``; return an addons path that
    finds it before this checkout's."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "bookconnect_therapy"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Python before 3.11.4 (Debian 12's): the archive is this repository's own
            tar.extractall(folder)  # noqa: S202
    config = configparser.ConfigParser()
    config.read(CONF)
    paths = [p.strip() for p in config.get("options", "addons_path").split(",") if p.strip()]
    return ",".join([str(folder), *(p for p in paths if os.path.realpath(p) != str(REPO))])


def odoo_shell(db, addons, script, log_name, timeout=900):
    """Run one of this folder's scripts in ``odoo-bin shell`` on ``db`` (through the addons
    path ``addons``, default the set-up's); return what it wrote to ``UPGRADE_SNAPSHOT``."""
    LOGS.mkdir(parents=True, exist_ok=True)
    output = LOGS / f"{log_name}.json"
    output.unlink(missing_ok=True)
    args = [
        *(str(VENV_PY), str(odoo_src() / "odoo-bin"), "shell", "-c", str(CONF)),
        *("-d", db, "--no-http", "--logfile", str(LOGS / f"{log_name}.log")),
    ]
    if addons:
        args += ["--addons-path", addons]
    with open(os.path.join(HERE, script), encoding="utf-8") as handle:
        proc = subprocess.run(
            args,
            input=handle.read(),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "UPGRADE_SNAPSHOT": str(output)},
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(output.read_text()) if output.exists() else None
