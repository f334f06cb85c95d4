"""Math-word-problem data: readers, number extraction, the expression language, answer checking,
a synthetic generator and splits. Conventions are documented in docs/data.md."""

from raykd.data.answers import (
    AnswerError,
    answers_match,
    apply_post_op,
    equation_reproduces_answer,
    expression_value,
    parse_answer,
    prediction_correct,
)
from raykd.data.check import check_report
from raykd.data.expressions import (
    ExpressionError,
    complexity,
    evaluate_prefix,
    from_prefix,
    is_well_formed_prefix,
    nesting_depth,
    operator_count,
    parse_infix,
    to_infix,
    to_prefix,
)
from raykd.data.hf import from_hf_dataset, to_hf_dataset
from raykd.data.masking import CONSTANTS, constant_vocabulary
from raykd.data.numbers import NumberMention, extract_numbers, format_number
from raykd.data.problem import COMPLEXITY_LEVELS, OPERATORS, Problem
from raykd.data.readers import (
    DataSpec,
    LoadResult,
    SkippedRow,
    load_problems,
    load_splits,
    parse_spec,
)
from raykd.data.splits import SPLIT_RATIOS, require_splits, stratified_split
from raykd.data.synthetic import generate_problems

__all__ = [
    "AnswerError",
    "COMPLEXITY_LEVELS",
    "CONSTANTS",
    "DataSpec",
    "ExpressionError",
    "LoadResult",
    "NumberMention",
    "OPERATORS",
    "Problem",
    "SPLIT_RATIOS",
    "SkippedRow",
    "answers_match",
    "apply_post_op",
    "check_report",
    "complexity",
    "constant_vocabulary",
    "equation_reproduces_answer",
    "evaluate_prefix",
    "expression_value",
    "extract_numbers",
    "format_number",
    "from_hf_dataset",
    "from_prefix",
    "generate_problems",
    "is_well_formed_prefix",
    "load_problems",
    "load_splits",
    "nesting_depth",
    "operator_count",
    "parse_answer",
    "parse_infix",
    "parse_spec",
    "prediction_correct",
    "require_splits",
    "stratified_split",
    "to_hf_dataset",
    "to_infix",
    "to_prefix",
]
