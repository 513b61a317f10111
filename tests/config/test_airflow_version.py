"""``airflow_version``: the version of the image built from docker/ (its AIRFLOW_VERSION build
argument), the Dockerfile's or the previous minor's last patch; anything else is refused."""

from __future__ import annotations

import pytest

from app_config import ConfigError, load_config
from app_config.settings import IMAGE_AIRFLOW_VERSION, PREVIOUS_AIRFLOW_VERSION
from local_ecs.images import default_airflow_version


def test_the_default_is_the_dockerfiles_version_and_adds_no_build_argument():
    # No build argument: the default's image asset (and every deployment of it) stays as it was.
    assert IMAGE_AIRFLOW_VERSION == default_airflow_version()
    assert load_config({}).image.build_args == {}


def test_the_previous_version_is_built_with_its_build_argument():
    config = load_config({"airflow_version": PREVIOUS_AIRFLOW_VERSION})
    assert config.image.build_args == {"AIRFLOW_VERSION": PREVIOUS_AIRFLOW_VERSION}


@pytest.mark.parametrize(("raw", "expected"), [
    ({"airflow_version": "3.1.0"}, "airflow_version=3.1.0: this app builds Airflow"),
    ({"airflow_version": "latest"}, "for another version build an image yourself and set image_uri"),
    ({"airflow_version": PREVIOUS_AIRFLOW_VERSION, "image_tag": "v1"},
     f"airflow_version={PREVIOUS_AIRFLOW_VERSION} with image_tag: airflow_version picks the version of the image "
     "built from docker/"),
])
def test_bad_airflow_version_is_refused_naming_the_key_and_the_fix(raw, expected):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
