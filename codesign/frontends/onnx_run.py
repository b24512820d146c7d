"""Loading QONNX models and running parts of them with QONNX's own executor.

The QONNX frontend never re-implements an ONNX operator: whatever float arithmetic a model
performs between an integer accumulator and its next quantizer, or before its first
quantizer, is run by the same engines as :func:`qonnx.core.onnx_exec.execute_onnx`, the
outside referee of the tests: onnxruntime for standard operators (graph optimizations off,
so no node is fused or rewritten) and QONNX's own implementations for ``Quant``,
``BipolarQuant``, ``Trunc`` and ``MultiThreshold``. :class:`NodeChain` keeps the runtime
sessions of a chain of nodes, since streamlining evaluates a chain many times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import MissingDependencyError, UnsupportedLayerError

EXTRA_HINT = "pip install 'codesign[onnx]' (or pip install -e '.[onnx]' in a checkout)"


def require_onnx() -> None:
    """Raise a named error unless onnx, qonnx and onnxruntime can be imported."""
    for module in ("onnx", "onnxruntime", "qonnx"):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"importing ONNX models needs the optional package {module!r}: "
                f"{EXTRA_HINT}") from None


def load_proto(source: Any) -> Any:
    """The ``onnx.ModelProto`` of a path, a ``ModelProto`` or a ``ModelWrapper``."""
    require_onnx()
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise UnsupportedLayerError(f"ONNX model {str(path)!r} does not exist (expected a "
                                        ".onnx file, e.g. from brevitas.export.export_qonnx)")
        try:
            return onnx.load(str(path))
        except Exception as exc:   # noqa: BLE001 - any decode failure is the file's fault
            raise UnsupportedLayerError(f"ONNX model {str(path)!r} cannot be read: "
                                        f"{type(exc).__name__}: {exc}") from None
    if isinstance(source, ModelWrapper):
        return source.model
    if isinstance(source, onnx.ModelProto):
        return source
    raise UnsupportedLayerError(f"cannot import a {type(source).__name__}: expected a path "
                                "to an .onnx file, an onnx.ModelProto or a ModelWrapper")


def load_model(source: Any) -> Any:
    """A QONNX ``ModelWrapper`` prepared for translation: shapes inferred, constants folded,
    nodes sorted, and every node and tensor keeping the name it has in the file (so errors
    name what the user sees; an unnamed node is called ``<op type>_<index>``)."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs, SortGraph
    from qonnx.transformation.infer_shapes import InferShapes

    proto = copy.deepcopy(load_proto(source))
    for index, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
    try:
        model = ModelWrapper(proto)
        for step in (InferShapes(), FoldConstants(), RemoveStaticGraphInputs(), SortGraph(),
                     InferShapes()):
            model = model.transform(step)
        return model
    except Exception as exc:   # noqa: BLE001
        raise UnsupportedLayerError(f"ONNX model cannot be prepared (shape inference and "
                                    f"constant folding failed): {type(exc).__name__}: {exc}"
                                    ) from None


def referee_model(source: Any) -> Any:
    """The model as the referee runs it: ``qonnx.util.cleanup.cleanup_model``."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    return cleanup_model(ModelWrapper(load_proto(source)))


def run_nodes(nodes: Sequence[Any], inputs: Mapping[str, np.ndarray],
              constants: Mapping[str, np.ndarray], outputs: Iterable[str],
              shapes: Mapping[str, Sequence[int]], opset: Sequence[Any]) -> dict[str, np.ndarray]:
    """Run ``nodes`` (in order) on float ``inputs`` with QONNX's executor.

    ``constants`` supplies every other tensor the nodes read; ``shapes`` the shape of every
    tensor they write (the executor allocates them first).
    """
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    outputs = list(outputs)
    produced = [name for node in nodes for name in node.output if name]
    read = {name for node in nodes for name in node.input if name}
    graph_inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
                    for name, value in inputs.items()]
    initializers = [numpy_helper.from_array(np.asarray(constants[name]), name)
                    for name in sorted(read - set(inputs) - set(produced))]
    infos = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[name]))
             for name in produced if name not in outputs]
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[name]))
            for name in outputs]
    graph = helper.make_graph(list(nodes), "part", graph_inputs, outs, initializers,
                              value_info=infos)
    model = ModelWrapper(helper.make_model(graph, opset_imports=list(opset)))
    feed = {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()}
    result = execute_onnx(model, feed)
    return {name: np.asarray(result[name]) for name in outputs}


class NodeChain:
    """A chain of nodes (each reading the previous one's output and constants), callable on
    a batch of values of any leading size."""

    def __init__(self, nodes: Sequence[Any], constants: Mapping[str, np.ndarray], head: str,
                 opset: Sequence[Any]) -> None:
        self.constants = constants
        self.opset = list(opset)
        self.steps: list[tuple[str, Any]] = []
        standard: list[Any] = []
        current = head
        for node in nodes:
            if node.domain in ("", "ai.onnx"):
                standard.append(self._any_batch(node))
                continue
            if standard:
                self.steps.append(("ort", self._session(standard, current)))
                current = standard[-1].output[0]
                standard = []
            self.steps.append(("custom", node))
            current = node.output[0]
        if standard:
            self.steps.append(("ort", self._session(standard, current)))
        self.head = head

    def _any_batch(self, node: Any) -> Any:
        """A ``Reshape`` to a constant shape of batch 1 reshapes any batch instead."""
        if node.op_type != "Reshape" or node.input[1] not in self.constants:
            return node
        shape = np.asarray(self.constants[node.input[1]])
        if shape.size == 0 or shape[0] != 1 or np.any(shape[1:] == -1):
            return node
        import copy

        node = copy.deepcopy(node)
        name = f"{node.input[1]}__any_batch"
        self.constants = {**self.constants, name: np.concatenate([[-1], shape[1:]])
                          .astype(shape.dtype)}
        node.input[1] = name
        return node

    def _session(self, nodes: list[Any], head: str) -> tuple[Any, str, str]:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        read = {name for node in nodes for name in node.input if name}
        produced = {name for node in nodes for name in node.output}
        tail = nodes[-1].output[0]
        inits = [numpy_helper.from_array(np.asarray(self.constants[name]), name)
                 for name in sorted(read - produced - {head})]
        graph = helper.make_graph(
            list(nodes), "chain",
            [helper.make_tensor_value_info(head, TensorProto.FLOAT, None)],
            [helper.make_tensor_value_info(tail, TensorProto.FLOAT, None)], inits)
        opset = [op for op in self.opset if op.domain in ("", "ai.onnx")]
        model = helper.make_model(graph, opset_imports=opset)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return session, head, tail

    def __call__(self, value: np.ndarray) -> np.ndarray:
        from onnx import TensorProto, helper
        from qonnx.custom_op.registry import getCustomOp

        current = np.asarray(value, dtype=np.float32)
        for kind, step in self.steps:
            if kind == "ort":
                session, head, tail = step
                current = np.asarray(session.run([tail], {head: current})[0])
                continue
            node = step
            context = {name: np.asarray(self.constants[name]) for name in node.input[1:]
                       if name}
            context[node.input[0]] = current
            context[node.output[0]] = np.zeros_like(current)
            graph = helper.make_graph(
                [node], "step",
                [helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT,
                                               list(current.shape))],
                [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT,
                                               list(current.shape))])
            getCustomOp(node).execute_node(context, graph)
            current = np.asarray(context[node.output[0]], dtype=np.float32)
        return current


def execute_model(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for every frame of ``x`` [N, *input shape without batch], computed
    by ``execute_onnx`` (the referee) in one batch: the batch dimension of every activation
    (and of every constant ``Reshape`` target) is set to N."""
    from qonnx.core.onnx_exec import execute_onnx

    inp, out = model.graph.input[0].name, model.graph.output[0].name
    x = np.asarray(x, dtype=np.float32)
    return np.asarray(execute_onnx(_with_batch(model, x.shape[0]), {inp: x})[out])


def _with_batch(model: Any, batch: int) -> Any:
    """A copy of ``model`` whose every activation tensor has batch dimension ``batch``."""
    import copy

    from onnx import numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper

    proto = copy.deepcopy(model.model)
    batched = {info.name for info in proto.graph.input}
    inits = {init.name: init for init in proto.graph.initializer}
    for node in proto.graph.node:             # activations: what the input reaches
        if not any(name in batched for name in node.input):
            continue
        batched.update(node.output)
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape.size and shape[0] == 1:
                shape[0] = batch
                name = f"{node.input[1]}__batch{batch}"
                proto.graph.initializer.append(numpy_helper.from_array(shape, name))
                node.input[1] = name
    for info in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        if info.name not in batched:
            continue
        dims = info.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch
    return ModelWrapper(proto)
