"""Workflow specs: YAML files -> the frozen, validated `Dag` model (see `dagu.spec.model`)."""

from dagu.spec.loader import load_dag, load_dag_text
from dagu.spec.params import parse_params

__all__ = ["load_dag", "load_dag_text", "parse_params"]
