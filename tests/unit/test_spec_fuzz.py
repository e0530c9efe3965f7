"""Property tests: no input makes the loader fail with anything but a Dag or a SpecError."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagu.errors import SpecError
from dagu.spec import load_dag_text, parse_params
from dagu.spec.model import Dag
from dagu.spec.policies import _CONTINUE_ON, _PRECONDITION, _REPEAT, _RETRY
from dagu.spec.root import HANDLER_KEYS, ROOT_KEYS
from dagu.spec.step_types import TYPE_SPECS
from dagu.spec.steps import STEP_KEYS

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Keys the loader knows (any spelling), so random documents reach deep into the readers.
KNOWN_KEYS = sorted(
    {
        *ROOT_KEYS.spellings,
        *STEP_KEYS.spellings,
        *HANDLER_KEYS.spellings,
        *_RETRY.spellings,
        *_REPEAT.spellings,
        *_CONTINUE_ON.spellings,
        *_PRECONDITION.spellings,
        *(k for spec in TYPE_SPECS.values() for k in spec.keys),
        "items", "max_concurrent", "start", "stop", "restart", "role", "content",
    }
)  # fmt: skip
TYPE_NAMES = sorted(TYPE_SPECS) + ["k8s", "container", "unknown-type"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "echo hi", "a\nb", "$X", "${ITEM}", "0 * * * *", "CRON_TZ=Nope/X 1 2 3 4 5",
                     "SIGINT", "while", "until", "true", "skipped", "failed", "-1", "3", "=", "A=1"]),  # fmt: skip
    st.text(max_size=12),
    st.sampled_from(TYPE_NAMES),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=20,
)

step_entries = st.one_of(values, st.dictionaries(st.sampled_from(sorted(STEP_KEYS.spellings)), values, max_size=6))

# A valid document touching most readers. Mutating one spot of it reaches deep code
# paths far more often than documents generated from scratch.
CORPUS = """\
name: corpus
type: chain
params: [A, {B: 2}, C=3]
env: [{X: 1}, Y=2]
dotenv: [.env.local]
schedule: {start: ["CRON_TZ=UTC 0 1 * * *"], stop: "0 2 * * *"}
preconditions: [{condition: "$X", expected: "1", negate: false}]
handler_on: {failure: {command: echo f}, exit: {command: echo e}}
mail_on: {failure: true}
smtp: {host: h, port: 25}
error_mail: {from: a@b, to: [c@d], prefix: "[x]", attach_logs: true}
secrets: [{name: S, provider: env, key: K}]
llm: {provider: openai, model: m, temperature: 1}
catchup_window: 1h
tags: a,b
steps:
  - name: a
    id: first
    command: [echo a, echo b]
    env: {K: v}
    retry_policy: {limit: 2, interval_sec: 1, backoff: 2, max_interval_sec: 9, exit_code: [1]}
    repeat_policy: {repeat: until, condition: "$X", expected: "1", limit: 3}
    continue_on: {failure: true, output: ["re:x"], exit_code: 2, mark_success: true}
    output: {name: OUT, key: out, omit: false}
    signal_on_stop: SIGTERM
    timeout_sec: 5
  - - {name: g1, command: echo, depends: [first], container: {image: alpine, volumes: ["/a:/b"], startup: keepalive}}
    - {name: g2, script: "echo 1", shell: bash, depends: []}
  - {name: p, call: child, params: {A: 1}, parallel: {items: [x, {k: v}], max_concurrent: 2}}
  - {name: h, type: http, command: GET http://x, config: {timeout: 3, headers: {A: b}}}
  - {name: c, type: chat, llm: {provider: openai, model: m}, messages: [{role: user, content: hi}]}
  - {name: d, executor: {type: docker, config: {image: alpine, auto_remove: true}}, command: echo}
"""


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _mutated(document, path, kind, replacement):
    if not path:
        return replacement
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[replacement if isinstance(replacement, str) else str(replacement)] = parent.pop(last)
    else:
        parent[last] = replacement
    return document


@st.composite
def mutated_corpus(draw):
    document = yaml.load(CORPUS, Loader=yaml.CSafeLoader)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "rename"]))
        replacement = draw(keys if kind == "rename" else values)
        document = _mutated(document, path, kind if path else "replace", replacement)
        if not isinstance(document, dict):
            break
    return document

def load_or_spec_error(text: str) -> None:
    try:
        result = load_dag_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.issues, "a SpecError must carry at least one issue"
        assert all(issue.file == "fuzz.yaml" for issue in exc.issues)
        str(exc)  # formatting must not fail either
        return
    assert isinstance(result, Dag)


def dump(document) -> str:
    return yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)


@FUZZ
@given(st.dictionaries(keys, values, max_size=8))
def test_random_root_documents_load_or_raise_spec_error(document):
    load_or_spec_error(dump(document))


def test_the_fuzz_corpus_itself_is_valid():
    dag = load_dag_text(CORPUS, "corpus.yaml")
    assert len(dag.steps) == 7


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus())
def test_mutations_of_a_valid_document_load_or_raise_spec_error(document):
    load_or_spec_error(dump(document))


@FUZZ
@given(values)
def test_random_values_as_a_whole_document_load_or_raise_spec_error(document):
    load_or_spec_error(dump(document))


@FUZZ
@given(st.lists(st.one_of(step_entries, st.lists(step_entries, max_size=3)), max_size=5), st.sampled_from(["chain", "graph"]))
def test_random_step_entries_load_or_raise_spec_error(steps, dag_type):
    load_or_spec_error(dump({"type": dag_type, "steps": steps}))


@FUZZ
@given(st.dictionaries(st.text(max_size=6), step_entries, max_size=4))
def test_random_step_mappings_load_or_raise_spec_error(steps):
    load_or_spec_error(dump({"steps": steps}))


@FUZZ
@given(st.text(alphabet=" \n\t-:[]{},'\"&*!|>#%@`ab01$=~?<.\\", max_size=120))
def test_random_yaml_ish_text_loads_or_raises_spec_error(text):
    load_or_spec_error(text)


@FUZZ
@given(st.text(max_size=80))
def test_arbitrary_text_loads_or_raises_spec_error(text):
    load_or_spec_error(text)


@FUZZ
@given(st.text(max_size=80))
def test_parse_params_never_fails_and_numbers_positionals_in_order(text):
    params = parse_params(text)
    positional = [p.name for p in params if p.positional]
    assert positional == [str(i) for i in range(1, len(positional) + 1)]
