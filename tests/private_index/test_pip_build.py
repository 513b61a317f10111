"""docker/pip_build.py, the helper the image build runs (no podman needed)."""

from __future__ import annotations

import importlib.util
import io
import urllib.error

from local_ecs.podman import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location("pip_build", PROJECT_ROOT / "docker" / "pip_build.py")
pip_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pip_build)

FREEZE = "apache-airflow==3.3.2\nSQLAlchemy==2.1.9\napache-airflow-providers-amazon==9.39.0\npip==25.1\nsix==1.17.0\n"


def test_constraints_keep_the_base_but_what_the_file_names():
    requirements = "# ours\napache_airflow.providers-Amazon==9.40.0 \\\n  ; python_version>'3'\n--extra-index-url x\nteamlib==1.1\n"
    assert pip_build.constraints(FREEZE, requirements) == ["apache-airflow==3.3.2", "SQLAlchemy==2.1.9", "six==1.17.0"]


def test_index_urls_of_pip_config_list():
    text = ("global.index-url='https://a:t@one.example/simple/'\n"
            "global.extra-index-url='https://two.example/simple/ https://u:p@three.example/simple/'\n"
            "global.cert='/etc/ssl/certs/ca.crt'\n")
    assert pip_build.index_urls(text) == ["https://a:t@one.example/simple/", "https://two.example/simple/",
                                          "https://u:p@three.example/simple/"]


def test_masked_hides_the_token_only():
    assert pip_build.masked("https://aws:tok@host.example:8443/simple/") == "https://aws:****@host.example:8443/simple/"
    assert pip_build.masked("https://host.example/simple/") == "https://host.example/simple/"


def _answer(code: int | None):
    def opener(request, timeout):
        opener.seen = request
        if code is None:
            return io.BytesIO(b"ok")
        raise urllib.error.HTTPError(request.full_url, code, "x", {}, None)
    return opener


def test_index_problem_names_a_refusal_without_the_token():
    opener = _answer(401)
    problem = pip_build.index_problem("https://aws:s3cr3t@host.example/simple/", opener)
    assert problem.startswith("the package index https://aws:****@host.example/simple/ refused the credentials (HTTP 401)")
    assert "s3cr3t" not in problem
    assert opener.seen.full_url == "https://host.example/simple/"  # credentials go in the header only
    assert opener.seen.get_header("Authorization") == "Basic YXdzOnMzY3IzdA=="
    assert pip_build.index_problem("https://aws:s3cr3t@host.example/simple/", _answer(404)) is None
    assert pip_build.index_problem("https://aws:s3cr3t@host.example/simple/", _answer(None)) is None


def test_explain_names_the_line_of_an_unresolvable_requirement():
    log = "ERROR: Could not find a version that satisfies the requirement teamlib==9.9 (from versions: 1.0)\n" \
          "ERROR: No matching distribution found for teamlib==9.9\n"
    (sentence,) = pip_build.explain(log, "# ours\n\nTeamLib==9.9\n", "docker/requirements.txt")
    assert sentence.startswith("docker/requirements.txt:3: 'TeamLib==9.9' cannot be resolved: no version of teamlib")
    (dependency,) = pip_build.explain(log, "otherlib==1\n", "docker/requirements.txt")
    assert dependency.startswith("'teamlib==9.9', a dependency of docker/requirements.txt, cannot be resolved")
    assert pip_build.explain("The user requested (constraint) six==1.17.0", "x==1\n", "r.txt")[0].startswith(
        "a line of r.txt needs another version of a package the base image pins")
