"""`genconfig --from-bandersnatch`: a bandersnatch 8.2 config read with bandersnatch's own
meaning (its [plugins] enabled list decides which filters act) and written as our
[mirror] / [sync] sections; whatever has no faithful counterpart is named."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.config.bandersnatch import Translation, translate

TYPICAL = """\
[mirror]
directory = /srv/pypi
master = https://pypi.example.org/
json = true
release-files = true
workers = 5
timeout = 10
stop-on-error = true
hash-index = false
diff-file = {{mirror_directory}}/mirrored-files
diff-append-epoch = true

[plugins]
enabled =
    allowlist_project
    allowlist_release
    blocklist_project
    exclude_platform
    latest_release
    size_project_metadata
    regex_release
    prerelease_release

[allowlist]
packages =
    Django>=4.2
    numpy
    requests[socks]  # inline comment
    Evil_Pkg

[blocklist]
packages =
    evil.pkg
platforms =
    windows
    macos
    py2.7

[latest_release]
keep = 3

[size_project_metadata]
max_package_size = 1G

[filter_regex]
releases =
    .*\\.post\\d+$
"""


def _sections(translation: Translation) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(translation.text())
    return parser


def _lines(parser: configparser.ConfigParser, key: str) -> list[str]:
    return parser.get("sync", key).split()


def test_a_typical_conf_becomes_our_keys() -> None:
    translation = translate(TYPICAL, "bandersnatch.conf")
    ours = _sections(translation)
    assert ours.get("mirror", "index-url") == "https://pypi.example.org/simple/"
    # names normalized, extras dropped (bandersnatch ignores them), the blocked one left out
    assert _lines(ours, "projects") == ["django>=4.2", "numpy", "requests"]
    assert ours.get("sync", "with-dependencies") == "false"
    assert ours.get("sync", "keep-latest") == "3"
    assert _lines(ours, "exclude") == ["^evil-pkg$"]
    assert _lines(ours, "prerelease-exclude") == [".*"]
    assert _lines(ours, "exclude-release") == [r".*\.post\d+$"]
    assert _lines(ours, "exclude-platform") == ["windows", "macos"]
    assert ours.get("sync", "workers") == "5"
    assert ours.get("sync", "diff-file") == "/srv/pypi/mirrored-files"
    assert ours.get("sync", "diff-append-epoch") == "true"
    assert not ours.has_option("sync", "index-only")
    text = translation.text()
    assert text.startswith("# Translated from bandersnatch.conf ")
    assert "with-dependencies = true" in text  # the comment says how to add dependencies
    assert "evil-pkg is allowlisted and blocked" in text
    assert "max_package_size = 1G changes nothing" in text  # allowlisted projects are exempt
    # what has no counterpart: named, with its line
    assert [(u.section, u.key, u.value, u.line) for u in translation.untranslated] == [
        ("mirror", "stop-on-error", "true", 8),
        ("latest_release", "keep", "3", 40),
        ("blocklist", "platforms", "py2.7", 34),
    ]
    for item in translation.untranslated:
        assert f"# not translated: {item}\n" in text


def test_the_cli_prints_the_config_and_warns_once_per_untranslated_option(
    tmp_path: Path, capsys
) -> None:
    conf = tmp_path / "bandersnatch.conf"
    conf.write_text(TYPICAL)
    assert main(["genconfig", "--from-bandersnatch", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert out == translate(TYPICAL, str(conf)).text()
    warnings = err.splitlines()
    assert len(warnings) == 3 and all(w.startswith("warning: not translated: ") for w in warnings)
    assert "[mirror] stop-on-error = true" in warnings[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "file not found"),
        ("just words\n", "not an ini file"),
        ("[env.linux]\npython_version = 3.12\n", "not a bandersnatch config"),
        ("[mirror]\nworkers = 1\nworkers = 2\n", "not an ini file"),
        (b"\xff\xfe[\x00", "not UTF-8"),
    ],
)
def test_a_bad_file_is_one_error_line_exit_2(tmp_path: Path, capsys, content, problem) -> None:
    conf = tmp_path / "bandersnatch.conf"
    if isinstance(content, bytes):
        conf.write_bytes(content)
    elif content is not None:
        conf.write_text(content)
    assert main(["genconfig", "--from-bandersnatch", str(conf)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and problem in err and str(conf) in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_folder_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["genconfig", "--from-bandersnatch", str(tmp_path)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_genconfig_without_the_flag_names_it(capsys) -> None:
    assert main(["genconfig"]) == 2
    err = capsys.readouterr().err
    assert "--from-bandersnatch" in err and len(err.splitlines()) == 1


def test_filters_act_only_when_enabled() -> None:
    """bandersnatch reads a filter section only when [plugins] enabled names a plugin of it."""
    translation = translate(
        "[mirror]\ndirectory = /m\n[plugins]\nenabled = allowlist_project\n"
        "[allowlist]\npackages =\n    foo>=2\n[latest_release]\nkeep = 2\n"
        "[blocklist]\nplatforms = windows\n",
        "b.conf",
    )
    ours = _sections(translation)
    assert _lines(ours, "projects") == ["foo"]  # the specifier needs allowlist_release
    assert not ours.has_option("sync", "keep-latest")
    assert not ours.has_option("sync", "exclude-platform")
    text = translation.text()
    assert "[latest_release] is inert" in text and "[blocklist] is inert" in text
    assert "foo>=2: bandersnatch applies the specifier only with allowlist_release" in text


def test_enabled_all_and_a_one_line_list() -> None:
    everything = translate("[plugins]\nenabled = all\n[latest_release]\nkeep = 4\n", "b.conf")
    assert _sections(everything).get("sync", "keep-latest") == "4"
    one_line = translate(
        "[plugins]\nenabled = latest_release blocklist_project\n[latest_release]\nkeep = 4\n",
        "b.conf",
    )
    assert not _sections(one_line).has_option("sync", "keep-latest")
    (item,) = [u for u in one_line.untranslated if u.section == "plugins"]
    assert "one plugin name per line" in item.reason and item.line == 2
    unknown = translate("[plugins]\nenabled =\n    whitelist_project\n", "b.conf")
    assert "no bandersnatch 8.2 plugin" in unknown.untranslated[0].reason


def test_platform_names_as_bandersnatch_reads_them() -> None:
    translation = translate(
        "[plugins]\nenabled = exclude_platform\n"
        "[blocklist]\nplatforms =\n    WIN\n    linux\n    freebsd\n    macosx\n"
        "    py3.6\n    win_amd64\n",
        "b.conf",
    )
    assert _lines(_sections(translation), "exclude-platform") == [
        "windows",
        "linux",
        "musllinux",  # bandersnatch's linux patterns include musllinux
        "freebsd",
        "macos",
    ]
    assert [u.value for u in translation.untranslated] == ["py3.6", "win_amd64"]


def test_mirror_keys() -> None:
    translation = translate(
        "[mirror]\nmaster = http://10.0.0.1:8080\nrelease-files = false\nworkers = 0\n"
        "json = false\nsimple-format = HTML\ncompare-method = hash\nallow-non-https = true\n"
        "delete_missing_packages = false\nproxy = http://proxy:3128\nbogus = 1\n",
        "b.conf",
    )
    ours = _sections(translation)
    assert ours.get("mirror", "index-url") == "http://10.0.0.1:8080/simple/"
    assert ours.get("sync", "index-only") == "true"
    assert not ours.has_option("sync", "workers")
    assert [(u.key, u.value) for u in translation.untranslated] == [
        ("workers", "0"),
        ("simple-format", "HTML"),
        ("proxy", "http://proxy:3128"),
        ("bogus", "1"),
    ]
    text = translation.text()
    assert "json = false: ours writes json/NAME" in text
    assert "ours removes a project deleted upstream" in text
    # no master: bandersnatch's own default
    assert "index-url = https://pypi.org/simple/" in translate("[mirror]\n", "b").text()


def test_a_size_filter_without_an_allowlist_is_not_translated() -> None:
    translation = translate(
        "[plugins]\nenabled = size_project_metadata\n[size_project_metadata]\n"
        "max_package_size = 1G\n",
        "b.conf",
    )
    assert not _sections(translation).has_option("sync", "max-file-size")
    (item,) = translation.untranslated
    assert item.key == "max_package_size" and "ours has max-file-size, per file" in item.reason


def test_specifiers_and_prereleases() -> None:
    """bandersnatch keeps every prerelease an allowlist specifier matches: said, not hidden."""
    conf = (
        "[plugins]\nenabled =\n    allowlist_project\n    allowlist_release\n"
        "[allowlist]\npackages =\n    foo>=2\n    foo<3\n    bar\n"
    )
    translation = translate(conf, "b.conf")
    assert _lines(_sections(translation), "projects") == ["foo>=2", "bar"]
    assert [(u.value, "PEP 440" in u.reason) for u in translation.untranslated] == [
        ("foo>=2", True),
        ("foo<3", False),  # one line per project here
    ]
    with_pre = translate(
        conf.replace("allowlist_release\n", "allowlist_release\n    prerelease_release\n")
        + "[filter_prerelease]\npackages =\n    Foo\n",
        "b.conf",
    )
    assert _lines(_sections(with_pre), "prerelease-exclude") == ["^foo$"]
    assert [u.value for u in with_pre.untranslated] == ["foo<3"]


def test_package_types_and_regex_projects() -> None:
    translation = translate(
        "[plugins]\nenabled =\n    regex_release_file_metadata\n    regex_project\n"
        "    blocklist_release\n"
        "[regex_release_file_metadata]\nany:release_file.packagetype =\n    bdist_wheel\n"
        "[filter_regex]\npackages =\n    .+-evil$\n"
        "[blocklist]\npackages =\n    foo<2\n",
        "b.conf",
    )
    ours = _sections(translation)
    assert _lines(ours, "package-types") == ["wheel"]
    assert _lines(ours, "exclude") == [".+-evil$"]
    assert not ours.has_option("sync", "projects")  # no allowlist: a full mirror
    assert [(u.section, u.value) for u in translation.untranslated] == [("blocklist", "foo<2")]


def test_requirement_files() -> None:
    translation = translate(
        "[plugins]\nenabled =\n    project_requirements\n    project_requirements_pinned\n"
        "[allowlist]\nrequirements_path = /reqs\nrequirements =\n    base.txt\n    extra-*.txt\n",
        "b.conf",
    )
    assert _lines(_sections(translation), "requirements") == ["/reqs/base.txt"]
    assert [u.value for u in translation.untranslated] == ["extra-*.txt"]


def test_the_translation_loads_as_a_sync_config(tmp_path: Path) -> None:
    from morgan_like.config.syncconf import load_sync_config

    ini = tmp_path / "translated.ini"
    ini.write_text(translate(TYPICAL, "bandersnatch.conf").text())
    config = load_sync_config(ini)
    assert [entry.name for entry in config.allowlist] == ["django", "numpy", "requests"]
    assert config.keep_latest == 3 and config.with_dependencies is False
    assert config.selection.exclude_platforms == {"windows", "macos"}
    assert config.excludes == ("^evil-pkg$",) and config.workers == 5
    assert config.index_url == "https://pypi.example.org/simple/"
