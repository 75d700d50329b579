"""The bad-input matrix: `tree_map`, the batch transforms and the other pure functions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

import helios.core as hlc
import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from helios.core.loop import state_from_dict
from tests.faults.bad_input.parts import (
    BadData,
    Row,
    cyclic_batch,
    fit,
    wrong,
)
from tests.faults.bad_input.runner import assert_refused, parametrize

# -- batches and transforms ------------------------------------------------------------


def _cyclic_list() -> list[Any]:
    tree: list[Any] = [torch.zeros(2)]
    tree.append(tree)
    return tree


@dataclasses.dataclass
class Node:
    value: Any
    next: Any = None


def _cyclic_record() -> dict[str, Any]:
    node = Node(torch.ones(1))
    node.next = {"back": [node]}
    return {"head": node}


CYCLE = (
    r"the batch contains a reference cycle: %s.*break the cycle \(or treat that object as a leaf"
)

TREE_ROWS = [
    Row(
        "tree_map",
        "a list that contains itself",
        lambda ws: hlc.tree_map(lambda x: x, _cyclic_list()),
        hlc.TreeCycleError,
        CYCLE % r"batch\[1\] is batch",
    ),
    Row(
        "tree_map",
        "a dict that contains itself",
        lambda ws: hlc.tree_map(lambda x: x, cyclic_batch([(torch.zeros(1),)])),
        hlc.TreeCycleError,
        CYCLE % r"batch\['self'\] is batch",
    ),
    Row(
        "to_device('cpu')",
        "a dataclass cycle",
        lambda ws: hlc.to_device("cpu")(_cyclic_record()),
        hlc.TreeCycleError,
        CYCLE % r"batch\['head'\]\[1\]\['back'\]\[0\] is batch\['head'\]",
    ),
    Row(
        "cast(float64)",
        "a list that contains itself",
        lambda ws: hlc.cast(torch.float64)([_cyclic_list()]),
        hlc.TreeCycleError,
        CYCLE % r"batch\[0\]\[1\] is batch\[0\]",
    ),
    Row(
        "DevicePlugin.process_training_batch",
        "a cyclic batch",
        lambda ws: hlp.DevicePlugin("cpu").process_training_batch(
            _cyclic_record(), TrainingState()
        ),
        hlc.TreeCycleError,
        CYCLE % r"batch\['head'\]",
    ),
    Row(
        "Trainer.fit",
        "a loader of cyclic batches, DevicePlugin",
        lambda ws: fit(ws, plugin=hlp.DevicePlugin(), data=BadData(ws, "cyclic batches")),
        hlc.TreeCycleError,
        CYCLE % r"batch\['self'\] is batch",
    ),
    Row(
        "tree_map",
        "fn=3",
        lambda ws: hlc.tree_map(wrong(3), [1]),
        TypeError,
        r"'int' object is not callable",
    ),
    Row(
        "register_container",
        "cls=3",
        lambda ws: hlc.register_container(wrong(3), lambda x: ([], None), lambda a, c: None),
        TypeError,
        r"register_container expects a class, got 3",
    ),
    Row(
        "register_container",
        "flatten=None",
        lambda ws: hlc.register_container(Node, wrong(None), lambda a, c: None),
        TypeError,
        r"register_container expects callable flatten and unflatten functions",
    ),
    Row(
        "compose",
        "a non-callable",
        lambda ws: hlc.compose(wrong(1)),
        TypeError,
        r"compose expects callables, got 1",
    ),
    Row("take", "n=-1", lambda ws: hlc.take(-1), ValueError, r"take\(n\) expects n >= 0, got -1"),
    Row(
        "take",
        "n=1.5",
        lambda ws: hlc.take(wrong(1.5)),
        TypeError,
        r"take\(n\) expects an integer, got 1\.5",
    ),
    Row(
        "take",
        "n=True",
        lambda ws: hlc.take(True),
        TypeError,
        r"take\(n\) expects an integer, got True",
    ),
    Row(
        "select_keys",
        "a missing key",
        lambda ws: hlc.select_keys("z")({"x": 1}),
        KeyError,
        r"select_keys: the batch has no key\(s\) 'z'; its keys are \['x'\]",
    ),
    Row(
        "select_keys",
        "a list batch",
        lambda ws: hlc.select_keys("x")(wrong([1])),
        TypeError,
        r"select_keys works on mapping batches \(dicts\), got list",
    ),
    Row(
        "drop_keys",
        "a tuple batch",
        lambda ws: hlc.drop_keys("x")(wrong((1,))),
        TypeError,
        r"drop_keys works on mapping batches \(dicts\), got tuple",
    ),
    Row(
        "cast",
        "an integer dtype",
        lambda ws: hlc.cast(torch.int64),
        TypeError,
        r"cast expects a floating-point torch.dtype, got torch.int64",
    ),
    Row(
        "cast",
        "a string",
        lambda ws: hlc.cast(wrong("float64")),
        TypeError,
        r"cast expects a floating-point",
    ),
    Row(
        "to_device",
        "'nonsense'",
        lambda ws: hlc.to_device("nonsense"),
        RuntimeError,
        r"device type at start of device string: nonsense",
    ),
    Row(
        "TrainingUnit.parse",
        "'fortnight'",
        lambda ws: hlc.TrainingUnit.parse("fortnight"),
        ValueError,
        r"train_unit must be a TrainingUnit or one of \['epoch', 'iteration'\], got 'fortnight'",
    ),
    Row(
        "state_from_dict",
        "a missing field",
        lambda ws: state_from_dict({"global_iteration": 1}),
        ValueError,
        r"a training state needs exactly the fields",
    ),
    Row(
        "reduce_metrics",
        "op='median'",
        lambda ws: hlt.reduce_metrics({"a": 1.0}, "median"),
        ValueError,
        r"op must be one of \['max', 'mean', 'min', 'sum'\], got 'median'",
    ),
]


@parametrize(TREE_ROWS)
def test_trees_and_transforms_refuse(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)
