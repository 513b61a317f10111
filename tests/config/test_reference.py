"""README's configuration table is generated from the model and cannot drift from it."""

from __future__ import annotations

from app_config import reference
from app_config.settings import STAGE_PRESETS, Settings


def test_readme_table_is_the_one_the_model_generates():
    readme = reference.README.read_text()
    assert reference.render(readme) == readme, "run `.venv/bin/python -m app_config.reference`"
    assert reference.main(["--check"]) == 0


def test_every_key_has_a_row_with_a_description_and_each_stage_default():
    table = reference.table()
    for key, field in Settings.model_fields.items():
        assert field.description, key
        assert f"| `{key}` |" in table
    assert "| `nat_gateways` | 1 (prod 2, lean 0) |" in table
    assert set(STAGE_PRESETS) == {"dev", "prod", "lean"}


def test_a_changed_model_makes_the_check_fail(monkeypatch, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(reference.README.read_text().replace("| `dashboard` | true (lean false) |", "| `dashboard` | false |"))
    monkeypatch.setattr(reference, "README", readme)
    assert reference.main(["--check"]) == 1
    assert reference.main([]) == 0 and reference.main(["--check"]) == 0
