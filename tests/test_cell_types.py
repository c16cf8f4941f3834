"""The one definition of the cell types (``rtclass.cell_types``): the wire codes, the classifier's
class orders, the simulator's types and the client's names all come from it."""

import ast
from pathlib import Path

import numpy as np

from rtclass.cell_types import C4_CLASS_ORDER, CELL_TYPE_NAMES, CELL_TYPES, UNLABELED
from rtclass.classify.layout import C4_CLASSES, RTCLASS_CLASSES
from rtclass.publish import wire
from rtclass.sim.celltypes import SPECS

PACKAGE = Path(__file__).resolve().parents[1] / "rtclass"


def test_wire_codes_are_unlabeled_then_the_types_in_order():
    # the README's wire format: 0 unlabeled, 1 PkC_ss, 2 PkC_cs, 3 MLI, 4 GoC, 5 MFB
    assert CELL_TYPE_NAMES == ("unlabeled", "PkC_ss", "PkC_cs", "MLI", "GoC", "MFB")
    assert CELL_TYPE_NAMES[0] == UNLABELED and CELL_TYPE_NAMES[1:] == CELL_TYPES
    assert len(set(CELL_TYPE_NAMES)) == len(CELL_TYPE_NAMES)
    assert wire.CELL_TYPE_NAMES is CELL_TYPE_NAMES
    for code, name in enumerate(CELL_TYPE_NAMES):
        assert wire.cell_type_code(name) == code
        assert wire.spike_topic(code) == b"spikes/" + name.encode()


def test_classifier_class_orders_are_the_same_types():
    assert RTCLASS_CLASSES == CELL_TYPES  # rtclass's own models: wire-code order
    assert C4_CLASSES == C4_CLASS_ORDER == ("GoC", "MLI", "MFB", "PkC_ss", "PkC_cs")  # npyx's index order
    assert sorted(C4_CLASS_ORDER) == sorted(CELL_TYPES)
    # a C4 class index maps to the wire code of the same name
    to_wire = np.array([CELL_TYPE_NAMES.index(c) for c in C4_CLASS_ORDER])
    assert to_wire.tolist() == [4, 3, 5, 1, 2]


def test_the_simulator_has_exactly_these_types():
    assert set(SPECS) == set(CELL_TYPES)
    assert all(spec.name == name for name, spec in SPECS.items())


def test_the_cell_type_module_imports_nothing():
    """A decoder that reads the wire format imports it: it must stay light."""
    tree = ast.parse((PACKAGE / "cell_types.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_no_other_module_spells_out_the_list_of_types():
    """One definition: no other tuple or list literal of several type names in the package."""
    names = set(CELL_TYPES)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cell_types.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(values & names) >= 3:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, f"cell type names listed outside rtclass/cell_types.py: {offenders}"
