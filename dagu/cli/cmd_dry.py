"""`dagu dry <dag> [-- params]`: the plan of a run, steps in execution order with resolved commands.

Params and env are evaluated as for a real run; no step runs and no history is written.
"""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    from dagu.cli.runopts import add_run_flags

    add_run_flags(parser)


def run(args, settings) -> int:
    import os
    from pathlib import Path

    from actors.plan import Plan
    from dagu.cli.runopts import load_for_run
    from dagu.resolve import evaluate_env, expand, params_env, params_text, resolve_params
    from dagu.steps.shell import build_shell

    dag = load_for_run(args, settings)
    workdir = args.default_working_dir or str(Path(dag.file).parent)
    shell = build_shell(None, dag.shell, settings.default_shell, os.environ)
    dag_env = evaluate_env(dag.env, {}, process_env=os.environ, shell=shell, cwd=workdir)
    params = resolve_params(dag.params, args.params_text, tuple(args.params), env={**os.environ, **dag_env}, shell=shell, cwd=workdir)
    env = params_env(params)
    env.update(dag_env)
    env.update({"DAG_NAME": dag.name, "DAG_RUN_ID": "<dry-run>"})
    plan = Plan(dag)
    out = [f"Plan of {dag.name}: {len(dag.steps)} step(s), type {dag.type.value} (dry run: nothing is executed)"]
    if params:
        out.append(f"params: {params_text(params)}")
    if dag.preconditions:
        out.append("preconditions: " + "; ".join(p.condition for p in dag.preconditions))
    width = max((len(n) for n in plan.order), default=0)
    for i, name in enumerate(plan.order, 1):
        step = plan.steps[name]
        deps = f"  (after {', '.join(step.depends)})" if step.depends else ""
        out.append(f"{i:>3}. {name.ljust(width)}{deps}")
        for line in _describe(step, env, expand):
            out.append(" " * 6 + line)
    for hook, step in dag.handler_on.items():
        out.append(f"  on {hook}: " + " ".join(_describe(step, env, expand))[:200])
    print("\n".join(out))
    return 0


def _describe(step, env, expand) -> list[str]:
    """What the step would run, with the variables known before the run substituted."""
    lines = []
    for cmd in step.commands:
        lines.append("$ " + expand(cmd, env, backticks=False))
    if step.script is not None:
        body = expand(step.script, env, backticks=False).rstrip("\n").splitlines()
        lines.append("script:" if not step.commands else "script (run by the command above):")
        lines.extend("  " + ln for ln in body[:20])
        if len(body) > 20:
            lines.append(f"  ... {len(body) - 20} more line(s)")
    if step.call:
        target = f"call {step.call}" + (f" with params {expand(step.params, env, backticks=False)}" if step.params else "")
        if step.parallel is not None:
            items = step.parallel.items if step.parallel.items is not None else step.parallel.expression
            target += f" in parallel over {items} (at most {step.parallel.max_concurrent} at once)"
        lines.append(target)
    elif step.type not in ("command", "dag", "parallel"):
        lines.append(f"{step.type} step")
    if step.preconditions:
        lines.append("if: " + "; ".join(p.condition + (f" == {p.expected}" if p.expected else "") for p in step.preconditions))
    if step.retry_policy is not None:
        lines.append(f"retry: up to {step.retry_policy.limit} time(s), every {step.retry_policy.interval_sec}s")
    return lines or ["(nothing to run)"]
