"""Value resolution: the 1.30 expansion pipeline, params, env, preconditions, parallel
items and output names. Pure functions (backticks and precondition commands run a
shell); no actors, no state, no config reading."""

from dagu.resolve.conditions import evaluate_precondition, matches_expected, matches_output
from dagu.resolve.env import (
    HOST_ENV_NAMES,
    HOST_ENV_PREFIXES,
    evaluate_env,
    host_env,
    parse_dotenv,
    read_dotenv,
    resolve_dir,
    run_context_env,
)
from dagu.resolve.errors import ResolveError
from dagu.resolve.expand import (
    ALL_STAGES,
    COMMAND_STAGES,
    SCRIPT_STAGES,
    Stage,
    StepRef,
    expand,
    expand_command,
    expand_config,
    expand_script,
    expand_value,
    json_path,
)
from dagu.resolve.items import MAX_PARALLEL_ITEMS, check_item_count, dedupe, item_text, split_parallel_items
from dagu.resolve.outputs import base58_encode, output_key, sub_dag_run_id
from dagu.resolve.params import params_env, params_json, params_list, params_text, resolve_params, tokenize_params

__all__ = [
    "ResolveError",
    # expand
    "Stage",
    "ALL_STAGES",
    "COMMAND_STAGES",
    "SCRIPT_STAGES",
    "StepRef",
    "expand",
    "expand_value",
    "expand_command",
    "expand_script",
    "expand_config",
    "json_path",
    # params
    "tokenize_params",
    "resolve_params",
    "params_env",
    "params_json",
    "params_list",
    "params_text",
    # env
    "HOST_ENV_NAMES",
    "HOST_ENV_PREFIXES",
    "evaluate_env",
    "read_dotenv",
    "resolve_dir",
    "parse_dotenv",
    "host_env",
    "run_context_env",
    # conditions
    "evaluate_precondition",
    "matches_expected",
    "matches_output",
    # items
    "MAX_PARALLEL_ITEMS",
    "split_parallel_items",
    "check_item_count",
    "dedupe",
    "item_text",
    # outputs
    "output_key",
    "sub_dag_run_id",
    "base58_encode",
]
