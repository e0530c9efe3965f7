"""The 1.30 evaluation pipeline (dag-spec 5.1): stages, quoting, references, backticks."""

from __future__ import annotations

import pytest

from dagu.resolve import (
    ALL_STAGES,
    COMMAND_STAGES,
    SCRIPT_STAGES,
    ResolveError,
    Stage,
    StepRef,
    expand,
    expand_command,
    expand_config,
    expand_script,
    expand_value,
    json_path,
)
from dagu.errors import DaguError

JSON_DOC = '{"user": {"name": "ann", "tags": ["a", "b", {"k": "deep"}], "age": 3, "ok": true, "none": null}}'
VARS = {
    "NAME": "world",
    "SPACED": "a b",
    "QUOTE": 'say "hi"\nbye',
    "DOC": JSON_DOC,
    "LIST": '[{"id": 1}, {"id": 2.5}]',
    "NOTJSON": "{broken",
    "NUM": "42",
    "1": "first",
    "EMPTY": "",
    "TICKED": "`echo should-not-run`",
    "DOLLARY": "$NAME",
}
STEPS = {"build": StepRef(stdout="/logs/build.out", stderr="/logs/build.err", exit_code=2)}
PROCESS_ENV = {"HOME": "/home/u", "PATH": "/usr/bin:/bin", "ONLY_ENV": "from-env"}


def run(text: str, stages: Stage = ALL_STAGES, **kwargs) -> str:
    return expand(text, VARS, steps=STEPS, stages=stages, process_env=PROCESS_ENV, **kwargs)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain text", "plain text"),
        ("hello $NAME", "hello world"),
        ("hello ${NAME}!", "hello world!"),
        ("${NAME}s and $NAMEs", "worlds and $NAMEs"),
        ("$1 ${1}", "first first"),
        ("$UNKNOWN ${UNKNOWN}", "$UNKNOWN ${UNKNOWN}"),
        ("'$NAME' '${NAME}'", "'$NAME' '${NAME}'"),
        ("\"$NAME\" x", '"world" x'),
        ("it's $NAME", "it's world"),
        ("'a' $NAME 'b'", "'a' world 'b'"),
        ("\"it's\" $NAME", '"it\'s" world'),
        ("${NAME:1:3} ${NAME:2}", "orl rld"),
        ("${NAME:99}", ""),
        ("${EMPTY}|", "|"),
    ],
)
def test_variables_are_substituted_when_known(text, expected):
    assert run(text, SCRIPT_STAGES) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"${NAME}"', '"world"'),
        ('{"q": "${QUOTE}"}', '{"q": "say \\"hi\\"\\nbye"}'),
        ('"${DOC.user.name}"', '"ann"'),
        ('"${MISSING}"', '"${MISSING}"'),
        ('"$QUOTE"', '"say "hi"\nbye"'),
    ],
)
def test_quoted_references_are_requoted_with_json_escapes(text, expected):
    assert run(text, SCRIPT_STAGES) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${DOC.user.name}", "ann"),
        ("${DOC.user.tags[1]}", "b"),
        ("${DOC.user.tags[2].k}", "deep"),
        ("${DOC.user.tags[9]}", "<nil>"),
        ("${DOC.user.missing}", "<nil>"),
        ("${DOC.user.missing.more}", "<nil>"),
        ("${DOC.user.none}", "<nil>"),
        ("${DOC.user.age} ${DOC.user.ok}", "3 true"),
        ("${DOC.user.tags}", '["a","b",{"k":"deep"}]'),
        ("$DOC.user.name!", "ann!"),
        ("${LIST.[1].id}", "2.5"),
        ("${NOTJSON.a}", "${NOTJSON.a}"),
        ("${NUM.a}", "${NUM.a}"),  # scalar JSON: not a document, left alone
        ("${DOC.user.name.x}", "${DOC.user.name.x}"),  # indexing a string: left alone
        ("$NAME.txt", "world.txt"),  # not JSON: plain $NAME then the text
    ],
)
def test_json_paths_read_json_valued_variables(text, expected):
    assert run(text, SCRIPT_STAGES) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${build.stdout}", "/logs/build.out"),
        ("${build.stderr}", "/logs/build.err"),
        ("${build.exit_code} ${build.exitCode}", "2 2"),
        ("${build.stdout:1:4}", "logs"),
        ("${other.stdout}", "${other.stdout}"),
    ],
)
def test_step_references_give_log_paths_and_exit_code(text, expected):
    assert run(text, SCRIPT_STAGES) == expected


def test_step_reference_wins_over_a_json_variable_of_the_same_name():
    variables = {"build": '{"stdout": "from-json"}'}
    assert expand("${build.stdout}", variables, steps=STEPS) == "/logs/build.out"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("`echo hi`", "hi"),
        ("a `printf '  x  \\n'` b", "a x b"),
        ("`echo $NAME`", "world"),  # VARS ran first
        ("`printf %s \"$ONLY_ENV\"`", "from-env"),  # the shell sees the process env
        ("v=${TICKED}", "v=`echo should-not-run`"),  # inserted values are not executed
        ("\\`echo no\\`", "`echo no`"),
    ],
)
def test_backticks_run_with_the_shell(text, expected):
    assert run(text) == expected


def test_failing_backtick_raises_with_the_command_and_stderr():
    with pytest.raises(ResolveError) as err:
        run("x `echo boom >&2; exit 3`")
    message = str(err.value)
    assert "echo boom >&2; exit 3" in message
    assert "exit code 3" in message
    assert "boom" in message
    assert isinstance(err.value, DaguError)


def test_backticks_use_the_given_environment_and_directory(tmp_path):
    out = expand("`pwd`:`printf %s \"$X\"`", {}, env_for_shell={"X": "given", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path))
    assert out == f"{tmp_path}:given"


def test_backticks_off_keeps_them_literal():
    assert run("`exit 1`", backticks=False) == "`exit 1`"
    assert expand_script("`exit 1` $NAME", VARS) == "`exit 1` world"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${NOPE:-dflt}", "dflt"),
        ("${EMPTY:-dflt} ${EMPTY-dflt}", "dflt "),
        ("${NAME:-dflt}", "world"),
        ("${NOPE:=set}", "set"),
        ("${NAME:+alt} ${NOPE:+alt}|", "alt |"),
        ("${EMPTY+alt}", "alt"),
        ("${#NAME} ${#NOPE}", "5 0"),
        ("${ONLY_ENV}", "from-env"),
        ("$HOME/x", "/home/u/x"),
        ("${NOPE:-$HOME}", "/home/u"),
        ("${NOPE:-${NAME}}", "world"),
        ("$NOPE ${NOPE}", "$NOPE ${NOPE}"),
        ("'$HOME'", "'$HOME'"),
    ],
)
def test_shell_stage_expands_posix_forms(text, expected):
    assert expand(text, {"NAME": "world", "EMPTY": ""}, stages=Stage.SHELL, process_env=PROCESS_ENV) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${F#*/}", "b/c.tar.gz"),
        ("${F##*/}", "c.tar.gz"),
        ("${F%.*}", "a/b/c.tar"),
        ("${F%%.*}", "a/b/c"),
        ("${F#zz}", "a/b/c.tar.gz"),
        ("${F/b/X}", "a/X/c.tar.gz"),
        ("${F//[/.]/_}", "a_b_c_tar_gz"),
        ("${F:2:3}", "b/c"),
        ("${F: -2}", "gz"),
        ("${F: -99}|", "|"),
        ("${F:1:-3}", "/b/c.tar"),
    ],
)
def test_shell_stage_supports_patterns_and_substrings(text, expected):
    assert expand(text, {"F": "a/b/c.tar.gz"}, stages=Stage.SHELL, process_env={}) == expected


def test_shell_stage_error_form_raises():
    with pytest.raises(ResolveError, match="NOPE: must be set"):
        expand("${NOPE:?must be set}", {}, process_env={})


@pytest.mark.parametrize(
    "text, stages, expected",
    [
        ("\\$NAME", SCRIPT_STAGES, "\\$NAME"),  # the shell will see the escape
        ("\\$NAME", ALL_STAGES, "$NAME"),  # we did the shell's job: escape consumed
        ("\\${NAME}", COMMAND_STAGES, "\\${NAME}"),
        ("\\\\$NAME", SCRIPT_STAGES, "\\\\world"),  # an even run does not protect
        ("\\$HOME", ALL_STAGES, "$HOME"),
    ],
)
def test_backslash_protects_a_dollar(text, stages, expected):
    assert run(text, stages) == expected


def test_inserted_values_are_not_rescanned():
    # NOTE: 1.30 would expand the `$NAME` held in DOLLARY in a later stage; we don't.
    assert run("${DOLLARY}") == "$NAME"


def test_command_stages_leave_process_env_to_the_shell():
    assert expand_command("echo $HOME ${NOPE:-d} $NAME `echo x`", VARS, process_env=PROCESS_ENV) == (
        "echo $HOME ${NOPE:-d} world x"
    )


def test_expand_value_runs_every_stage():
    out = expand_value('"${NAME}" `echo $NAME` ${NOPE:-d} $HOME', VARS, process_env=PROCESS_ENV)
    assert out == '"world" world d /home/u'


def test_expand_config_walks_maps_and_lists():
    config = {"url": "http://$NAME", "headers": ({"X": "${NUM}"},), "n": 3}
    assert expand_config(config, VARS, process_env={}) == {"url": "http://world", "headers": [{"X": "42"}], "n": 3}


def test_text_without_dollar_or_backtick_is_returned_unchanged():
    text = "nothing \ue000 here"
    assert expand(text, VARS) is text


@pytest.mark.parametrize(
    "raw, path, expected",
    [
        ('{"a": {"b": [1, 2]}}', ".a.b[1]", "2"),
        ('{"a": 1.0}', ".a", "1"),
        ('{"a b": 1}', '["a b"]', "1"),
        ('{"a": 1}', ".b", "<nil>"),
        ("[1]", "[0]", "1"),
        ("not json", ".a", None),
        ('{"a": 1}', "..", None),
    ],
)
def test_json_path(raw, path, expected):
    assert json_path(raw, path) == expected
