"""Tools the agent can call: plain Python functions, their JSON schemas, and the demo set."""

from voxloop.tools.schema import SchemaError, function_schema
from voxloop.tools.toolbox import Outcome, Tool, Toolbox, Transfer, load, tool

__all__ = ["Outcome", "SchemaError", "Tool", "Toolbox", "Transfer", "function_schema", "load", "tool"]
