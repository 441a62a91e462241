"""bundle_resolve.merge_env_errors: envs' errors grouped as records, each group said once."""

from __future__ import annotations

from typing import cast

from morgan_like.errors import MorganLikeError
from morgan_like.index.finder import Finder
from morgan_like.modes.bundle_resolve import merge_env_errors
from morgan_like.resolve.report import EnvResolutionError, env_label

from ..helpers import env


def test_the_same_failure_in_several_envs_is_said_once_naming_them() -> None:
    a, b, c = env("a", "3.12.1"), env("b", "3.11.7"), env("c", "3.9.18")
    conflict = "cannot resolve the requirements.\n  The conflict is caused by: x"
    errors: list[tuple] = [
        (a, EnvResolutionError(a, conflict)),
        (b, EnvResolutionError(b, conflict)),
        (c, MorganLikeError("boom")),
    ]
    text = merge_env_errors(errors, cast(Finder, None))
    assert text == f"envs 'a', 'b': {conflict}\n{env_label(c)}: boom"
    assert str(errors[0][1]) == f"{env_label(a)}: {conflict}"


def test_one_env_is_named_by_its_label_and_its_text_is_never_rewritten() -> None:
    a = env("a", "3.12.1")
    # A label inside the text stays as it is: the text is never searched or replaced.
    body = f"see {env_label(a)} too"
    assert merge_env_errors([(a, EnvResolutionError(a, body))], cast(Finder, None)) == (
        f"{env_label(a)}: {body}"
    )
