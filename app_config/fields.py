"""Building blocks of the configuration model: value types that read ``-c`` strings and cdk.json
JSON alike, and the one way a problem is written (the key, what is wrong, the fix).

A problem raised by a validator is a :class:`pydantic_core.PydanticCustomError` of type
``config`` whose context holds the finished sentence (``problem``) or several (``problems``);
:func:`app_config.loader.load_config` prints them as they are.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

#: Fargate's task sizes (source in :mod:`app_config.fargate`), cited in every size problem.
FARGATE_SIZES_URL = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size"
)


def problem(text: str) -> PydanticCustomError:
    """One finished sentence naming the key, what is wrong and the fix."""
    return PydanticCustomError("config", "{problem}", {"problem": text})


def problems(texts: list[str]) -> PydanticCustomError:
    """Several finished sentences at once (a rule that looks at many values)."""
    return PydanticCustomError("config", "{problems}", {"problems": list(texts)})


def show(value: Any) -> str:
    """A value as the problem sentences print it: numbers bare, text quoted."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def setting(default: Any, description: str, *, problem: str | None = None, default_text: str | None = None,
            **constraints: Any) -> Any:
    """A configuration key: its default, its description (the README's "meaning" column), and
    the sentence printed when a constraint (``ge``, ``le``, ``pattern``, a ``Literal`` choice)
    refuses its value, with ``{key}`` and ``{value}`` filled in.

    :param default_text: what the README shows as default when the default depends on other keys.
    """
    extra: dict[str, Any] = {k: v for k, v in (("problem", problem), ("default_text", default_text)) if v is not None}
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    return value


def upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _comma_list(value: Any) -> Any:
    """``"a, b"`` (a ``-c`` string) or ``["a", "b"]`` (cdk.json) -> ``("a", "b")``."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        return tuple(str(item).strip() for item in value if str(item).strip())
    return value


def json_object(example: str, not_json: str = "{key} is not valid JSON") -> BeforeValidator:
    """Read a JSON object given as text (``-c key='{...}'``) once; cdk.json gives the object.

    :param not_json: how the problem of text that is not JSON starts (``{key}`` filled in).
    """

    def parse(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as err:
                start = not_json.format(key=info.field_name)
                raise problem(f"{start} ({err}); write it like -c '{info.field_name}={example}'")
        if not isinstance(value, dict):
            raise problem(f"{info.field_name} must be a JSON object of name -> settings, like {example}")
        return value

    return BeforeValidator(parse)


#: A whole number from ``2``, ``"2"`` or ``2.0``; never from ``true`` or ``2.5``.
Whole = Annotated[int, BeforeValidator(_not_bool)]
#: A comma-separated ``-c`` string or a cdk.json list.
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
