"""Strategy templates (seed 004): a catalog with typed params and JSON Schemas, and their runs."""

from engine.templates.catalog import (
    TEMPLATES,
    Template,
    check_symbols,
    compile_template,
    describe_templates,
)
from engine.templates.params import TemplateError
from engine.templates.plans import DcaPlan, GridPlan

__all__ = [
    "TEMPLATES",
    "DcaPlan",
    "GridPlan",
    "Template",
    "TemplateError",
    "check_symbols",
    "compile_template",
    "describe_templates",
]
