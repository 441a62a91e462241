"""The command line fuzzed: whatever words are given, the answer is a parse, --help, or
one line naming what is refused; never a traceback, never "unexpected"."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from morgan_like.cli import edge, main
from morgan_like.cli.flags import COMMAND_NAMES, FLAGS, server_actions
from morgan_like.cli.parse import CommandLineError, HelpShown, parse_command_line

_OPTIONS = sorted(
    {name for flag in FLAGS for name in flag.names}
    | {s for action in server_actions() for s in action.option_strings}
)
_LONG = [o for o in _OPTIONS if o.startswith("--")]
_WORDS = st.one_of(
    st.sampled_from(COMMAND_NAMES),
    st.sampled_from(_OPTIONS),
    st.sampled_from(_LONG).flatmap(lambda o: st.integers(3, len(o)).map(lambda n: o[:n])),
    st.sampled_from(_LONG).flatmap(lambda o: st.text(max_size=12).map(lambda v: f"{o}={v}")),
    st.sampled_from(["-1", "0", "99999", "nan", "inf", "1e400", "(", "a;b", "::1", "--"]),
    st.sampled_from(["http://h:99999/", "http://h/?q", "https://u:p@h/s#f", "file:///x"]),
    st.text(max_size=20),
)
_SAFE = {"version", "generate_env", "generate_reqs"}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=st.lists(_WORDS, max_size=8))
def test_any_command_line_is_parsed_or_refused_in_one_line(argv: list[str], capsys) -> None:
    try:
        parsed = parse_command_line(argv)
    except HelpShown:
        return
    except CommandLineError as refused:
        assert "\n" not in str(refused)
        return
    finally:
        capsys.readouterr()
    args = parsed.args
    try:  # the edge's checks read the tree, and write nothing
        if parsed.command == "sync":
            edge.sync_tree(args.index_path)
        elif parsed.command == "mirror":
            edge.bundle_tree(args.index_path)
        elif getattr(args, "index_path", None) is not None:
            edge.tree_path(args.index_path)
    except edge.Refused as refused:
        assert "\n" not in str(refused)
    if parsed.command in _SAFE:
        assert main(argv) in (0, 2)
        err = capsys.readouterr().err
        assert "unexpected" not in err and "Traceback" not in err


@pytest.mark.parametrize("word", ["a\nb", "\x1b[31m", "x\ry"])
def test_control_characters_in_a_refused_word_stay_on_one_line(word: str, capsys) -> None:
    assert main(["mirror", word]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\r" not in err
