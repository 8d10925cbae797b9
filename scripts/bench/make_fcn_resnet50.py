#!/usr/bin/python3
"""Write a ~130 MB ONNX export of torchvision's fcn_resnet50 for benchmarks (not committed).

    /usr/bin/python3 scripts/bench/make_fcn_resnet50.py OUT_PATH [--size 224]

Random init (weights=None, weights_backbone=None: nothing is downloaded), aux_loss=False, then every
BatchNorm gets random statistics so that folding is not an identity: running_mean ~ N(0, 0.1),
running_var ~ U(0.5, 2.0), weight ~ U(0.5, 1.5) with ~1/3 negated, bias ~ N(0, 0.1) (fixed seed).
These ranges keep the 54-BN-deep network's output finite and O(1..100), so verification by running
before/after folding stays meaningful in float32.

Input: static 1x3xSIZExSIZE (default 224) named "image"; output "out" 1x21xSIZExSIZE.
Exported with torch 1.13 as training=TrainingMode.PRESERVE on an eval() module, do_constant_folding=False,
opset 13: this keeps the BatchNormalization nodes (TrainingMode.EVAL would fuse them into the convs).
Needs /usr/bin/python3 (Debian torch 1.13, torchvision 0.14, onnx 1.12).
"""
import argparse
import os
import sys
import time
import warnings

import onnx
import torch
import torchvision

warnings.filterwarnings("ignore")


class OutOnly(torch.nn.Module):
    """torchvision segmentation models return a dict; ONNX export wants tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


@torch.no_grad()
def randomize_bn(model, g):
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            sign = torch.where(torch.rand(c, generator=g) < 0.33, -1.0, 1.0)
            m.weight.copy_((torch.rand(c, generator=g) + 0.5) * sign)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_path")
    ap.add_argument("--size", type=int, default=224, help="input height and width (static)")
    args = ap.parse_args()

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False)
    n_bn_torch = randomize_bn(net, g)
    model = OutOnly(net).eval()
    x = torch.rand(1, 3, args.size, args.size, generator=g)
    with torch.no_grad():
        y = model(x)
    assert torch.isfinite(y).all(), "non-finite output"

    os.makedirs(os.path.dirname(os.path.abspath(args.out_path)), exist_ok=True)
    t0 = time.perf_counter()
    torch.onnx.export(model, (x,), args.out_path,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      opset_version=13, input_names=["image"], output_names=["out"])
    t_export = time.perf_counter() - t0

    m = onnx.load(args.out_path)
    onnx.checker.check_model(args.out_path)  # path form: works for files > 2 GB too
    ops = [n.op_type for n in m.graph.node]
    n_bn = ops.count("BatchNormalization")
    n_params = sum(p.numel() for p in net.parameters())
    print("torch BatchNorm modules: %d" % n_bn_torch)
    print("ONNX BatchNormalization nodes: %d (Conv %d, Identity %d)" % (n_bn, ops.count("Conv"),
                                                                        ops.count("Identity")))
    print("parameters: %d, initializers: %d" % (n_params, len(m.graph.initializer)))
    print("input: image 1x3x%dx%d (static); output max |y| = %.3g" % (args.size, args.size, y.abs().max()))
    print("file: %s, %d bytes (%.1f MB), export %.1f s" % (args.out_path, os.path.getsize(args.out_path),
                                                          os.path.getsize(args.out_path) / 1e6, t_export))
    if n_bn != n_bn_torch:
        print("WARNING: exporter dropped BatchNormalization nodes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
