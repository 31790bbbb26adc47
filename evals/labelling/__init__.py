"""The labelling loop: export answers to label, import the labels, check and calibrate judges.

See docs/calibration.md.
"""

from evals.labelling._check import AGREEMENT, JudgeCheck, check_judge, contract_labels, label_source
from evals.labelling._drift import DriftFinding, check_drift
from evals.labelling._files import (
    COLUMNS,
    ImportResult,
    answer_id,
    export_rows,
    import_labels,
    known_items,
    read_label_file,
    stratified,
    validate_rows,
    write_label_file,
)
from evals.labelling._policy import POLICY_AGREEMENT, check_policy, unlabelled_policy_note

__all__ = [
    "AGREEMENT",
    "COLUMNS",
    "POLICY_AGREEMENT",
    "DriftFinding",
    "ImportResult",
    "JudgeCheck",
    "answer_id",
    "check_drift",
    "check_judge",
    "check_policy",
    "contract_labels",
    "export_rows",
    "import_labels",
    "known_items",
    "label_source",
    "read_label_file",
    "stratified",
    "unlabelled_policy_note",
    "validate_rows",
    "write_label_file",
]
