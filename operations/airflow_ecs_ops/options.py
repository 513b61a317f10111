"""Checks of the command line's option values, before any AWS call: click parameter types whose
errors name the option, the value and the rule (``Error: Invalid value for '--region': ...``).

The CLI does not import the CDK app, so it checks the *form* of ``--project`` and ``--stage``
(what a CloudFormation stack name allows); a well-formed stage nobody deployed is reported by the
stack lookup, which names the stacks it looked for.
"""

from __future__ import annotations

import difflib
import math
import re
from functools import lru_cache

import click
from botocore.loaders import create_loader

#: A CloudFormation stack name: a letter, then letters, digits and hyphens, at most 128
#: characters. Source: CreateStack, StackName,
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
STACK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
#: The longest stack role the CDK app names a stack after (``<project>-<stage>-<role>``).
LONGEST_ROLE = "database"
#: The longest ``--project`` or ``--stage``: two of them, two hyphens and the longest role fit
#: the 128 characters of a stack name.
MAX_NAME_PART = (128 - 2 - len(LONGEST_ROLE)) // 2
_NAME_PART_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")


@lru_cache(maxsize=1)
def _partitions() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(region name patterns, known region names)`` of every partition, from the endpoint data
    that ships with botocore (each partition's ``regionRegex`` and ``regions``)."""
    partitions = create_loader().load_data("endpoints")["partitions"]
    patterns = tuple(p["regionRegex"] for p in partitions)
    regions = tuple(sorted(r for p in partitions for r in p["regions"]))
    return patterns, regions


class NamePart(click.ParamType):
    """``--project`` or ``--stage``: a part of the stack names ``<project>-<stage>-<role>``.

    Accepts letters, digits and inner hyphens, such that every stack name stays within
    :data:`STACK_NAME_RE`; ``--project`` must also start with a letter.
    """

    name = "name"

    def __init__(self, what: str, example: str, first_is_letter: bool = False):
        self.what, self.example, self.first_is_letter = what, example, first_is_letter

    def convert(self, value, param, ctx):
        text = str(value)
        if (not _NAME_PART_RE.match(text) or len(text) > MAX_NAME_PART
                or (self.first_is_letter and not text[:1].isalpha())):
            start = "start with a letter, " if self.first_is_letter else ""
            self.fail(
                f"{text!r}: the {self.what} is part of the stack names <project>-<stage>-<role>, which "
                f"CloudFormation allows letters, digits and hyphens in; {start}no spaces, no leading or trailing "
                f"hyphen, at most {MAX_NAME_PART} characters. Give the {self.what} you deployed "
                f"with, e.g. {self.example}",
                param, ctx,
            )
        return text


class Region(click.ParamType):
    """``--region`` (or ``AWS_REGION``): an AWS region name as botocore knows them (a region of
    its endpoint data, or a name of a partition's form, for regions newer than this botocore)."""

    name = "region"

    def convert(self, value, param, ctx):
        text = str(value)
        patterns, regions = _partitions()
        if text in regions or (text == text.lower() and any(re.match(p, text) for p in patterns)):
            return text
        close = difflib.get_close_matches(text.strip().lower().replace(" ", "-").replace("_", "-"), regions, n=3)
        hint = f"did you mean {' or '.join(close)}?" if close else "a region name looks like eu-west-1 or us-east-1"
        self.fail(
            f"{text!r} (from --region or AWS_REGION) is not an AWS region name; {hint} "
            "(aws ec2 describe-regions lists your account's regions)",
            param, ctx,
        )


class Seconds(click.ParamType):
    """A duration in seconds: a finite number greater than 0 (``600``, ``90.5``)."""

    name = "seconds"

    def __init__(self, option: str, leave_out: str):
        self.option, self.leave_out = option, leave_out

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(
                f"{value!r}: give the seconds to wait as a number greater than 0, e.g. {self.option} 600 "
                f"({self.leave_out})",
                param, ctx,
            )
        return seconds
