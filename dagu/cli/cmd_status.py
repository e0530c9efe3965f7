"""`dagu status <dag>`: the summary tree (or JSON) of the latest run or of `--run-id`."""

from __future__ import annotations

__all__ = ["add_arguments", "run", "record_json"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="DAG name, or its workflow file")
    parser.add_argument("-r", "--run-id", help="show this run instead of the latest")
    parser.add_argument("--json", action="store_true", help="print the run as one JSON object (the API's shape)")


def run(args, settings) -> int:
    import orjson

    from dagu.cli.lookup import dag_name_of, find_run
    from dagu.cli.render import render_summary

    _, _, record = find_run(settings, dag_name_of(args.dag, settings), args.run_id)
    if args.json:
        print(orjson.dumps(record_json(record), option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_summary(record))
    return 0


def record_json(record) -> dict:
    """The run in the API's camelCase shape, each node with its `outputs` and `attempts`."""
    from dagu.store import HANDLER_KEYS

    doc = record.to_json()
    doc["statusLabel"] = record.status.label

    def node_doc(node, data):
        data["statusLabel"] = node.status.label
        data["stdout"] = node.stdout or ""
        data["stderr"] = node.stderr or ""
        data["attempts"] = node.retry_count + (1 if node.started_at else 0)
        data["exitCode"] = node.exit_code
        data["outputs"] = {k: v.partition("=")[2] for k, v in node.output_variables.items()}
        return data

    doc["nodes"] = [node_doc(n, d) for n, d in zip(record.nodes, doc.get("nodes", []))]
    for key, attr in HANDLER_KEYS.items():
        node = getattr(record, attr)
        if node is not None and key in doc:
            doc[key] = node_doc(node, doc[key])
    return doc
