"""Measure what ONNX-level int8 quantization does to batch invariance (not shipped; findings go to models/README.md).

Two variants of a model.onnx, written to .work/out/<name>/:
- model.dyn-int8.onnx: dynamic quantization as ONNX Runtime's quantize_dynamic does it: every MatMul with a constant
  weight becomes DynamicQuantizeLinear(activation) -> MatMulInteger(int8 weights per column) -> rescale. The activation
  scale and zero point are computed over the whole input tensor, i.e. over the whole padded batch.
- model.w-int8.onnx: weight-only int8 (DequantizeLinear on the stored weights, fp32 MatMul): activations untouched.
usage: quantize_check.py NAME
"""
import json, os, subprocess, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from common import WORK, HERE, ROOT


def quantize(model, dynamic):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, new_inits = [], []
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in inits and numpy_helper.to_array(inits[n.input[1]]).ndim == 2:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0  # per output column, symmetric
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            base = n.input[1].replace(".", "_")
            new_inits += [numpy_helper.from_array(q, base + "_q"), numpy_helper.from_array(scale.astype(np.float32), base + "_s")]
            if dynamic:
                x = n.input[0]
                nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [x + "_q", x + "_s", x + "_zp"]))
                new_inits.append(numpy_helper.from_array(np.zeros(w.shape[1], np.int8), base + "_zp"))
                nodes.append(helper.make_node("MatMulInteger", [x + "_q", base + "_q", x + "_zp", base + "_zp"], [n.output[0] + "_i32"]))
                nodes.append(helper.make_node("Cast", [n.output[0] + "_i32"], [n.output[0] + "_f"], to=TensorProto.FLOAT))
                nodes.append(helper.make_node("Mul", [x + "_s", base + "_s"], [n.output[0] + "_sc"]))
                nodes.append(helper.make_node("Mul", [n.output[0] + "_f", n.output[0] + "_sc"], [n.output[0]]))
            else:
                nodes.append(helper.make_node("DequantizeLinear", [base + "_q", base + "_s"], [base + "_deq"], axis=1))
                nodes.append(helper.make_node("MatMul", [n.input[0], base + "_deq"], list(n.output)))
            inits.pop(n.input[1])
        else:
            nodes.append(n)
    del g.node[:]; g.node.extend(nodes)
    del g.initializer[:]; g.initializer.extend(list(inits.values()) + new_inits)
    return model


def main():
    res = {}
    for name in sys.argv[1:]:
        src = os.path.join(WORK, "out", name, "model.onnx")
        res[name] = {"fp32": {"mb": os.path.getsize(src) / 1e6, **validate(src, name)}}
        for dynamic, tag in ((True, "dyn-int8"), (False, "w-int8")):
            m = quantize(onnx.load(src), dynamic)
            onnx.checker.check_model(m)
            out = os.path.join(WORK, "out", name, f"model.{tag}.onnx")
            onnx.save(m, out)
            res[name][tag] = {"mb": os.path.getsize(out) / 1e6, **validate(out, name)}
        print(name, json.dumps(res[name]))
    json.dump(res, open(os.path.join(WORK, "int8.json"), "w"), indent=1)


def validate(path, name):
    r = subprocess.run(["node", os.path.join(HERE, "validate.mjs"), path, os.path.join(WORK, "out", name, "reference.json")],
                       capture_output=True, text=True, cwd=ROOT)
    v = json.loads(r.stdout)
    return {"max_diff_vs_pytorch_fp32": v["parityMaxAbsDiff"], "max_diff_alone_vs_padded_batch": v["batchInvarianceMaxAbsDiff"]}


if __name__ == "__main__":
    main()
