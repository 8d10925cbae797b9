#!/usr/bin/python3
"""Peer baseline for `model-surgeon inspect`: the obvious Python way to get per-tensor statistics.

    /usr/bin/python3 scripts/bench/peer_inspect.py MODEL.onnx

Times, once per call (no warm-up, no caching), with time.perf_counter:
  load  = onnx.load(MODEL) (also resolves external data next to the model, as onnx.load does by default)
  stats = for every initializer and every Constant node's `value` tensor (also in subgraphs):
          numpy_helper.to_array + mean + std (float64 accumulation)
Prints one JSON line: {"seconds", "load_seconds", "stats_seconds", "tensors", "params"}.
Needs /usr/bin/python3 (Debian onnx 1.12 + numpy).
"""
import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper


def graph_tensors(graph):
    for t in graph.initializer:
        yield t
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == "Constant" and a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                yield a.t
            if a.type == onnx.AttributeProto.GRAPH:
                yield from graph_tensors(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from graph_tensors(g)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    t0 = time.perf_counter()
    model = onnx.load(path)
    t1 = time.perf_counter()
    tensors = params = 0
    for t in graph_tensors(model.graph):
        a = numpy_helper.to_array(t)
        if a.size and a.dtype.kind in "fiub":
            mean = float(a.mean(dtype=np.float64))
            std = float(a.std(dtype=np.float64))
            del mean, std
        tensors += 1
        params += int(a.size)
    t2 = time.perf_counter()
    print(json.dumps({"seconds": round(t2 - t0, 6), "load_seconds": round(t1 - t0, 6),
                      "stats_seconds": round(t2 - t1, 6), "tensors": tensors, "params": params}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
