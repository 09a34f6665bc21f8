"""int8 variants that keep batch invariance: static activation scales (calibrated once, frozen as constants).

For every MatMul with a constant weight (all nn.Linear layers; the attention products and the lexical features stay
fp32): QuantizeLinear(x, s_x, zp_x) with s_x/zp_x constants -> MatMulInteger(x_q, W_q, zp_x, 0) with W_q int8 per output
column -> Cast -> Mul(s_x * s_w) (ONNX Runtime fuses this into MatMulIntegerToFloat). Dynamic quantization computes s_x
from the whole padded batch, which is what breaks batch invariance (ONNX Runtime #10111); a constant s_x cannot.
The word-embedding table is stored int8 with one scale per row (Gather, Cast, Mul by the gathered row scale).
Activation ranges: min/max of each Linear's input over a calibration sample of training inputs (PyTorch forward hooks;
each ONNX MatMul is matched to its nn.Linear by its weight), widened to include 0.

usage: quantize.py NAME...   NAME in qa-demo, rerank-demo, retrieve-demo -> <run dir>/model.int8.onnx, .work/int8.json
"""
import json, os, pickle, random, sys
import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto
from common import WORK, seed_all
from model import Config, LexicalQA, LexicalRanker, EmbedModel

FUSED = os.environ.get("INT8_FUSED", "1") == "1"
RUNS = {"qa-demo": os.path.join(WORK, "qa", "qa-demo"), "rerank-demo": os.path.join(WORK, "ret", "rerank-demo"),
        "retrieve-demo": os.path.join(WORK, "ret", "retrieve-demo")}


def load_torch(name):
    d = RUNS[name]
    cfg = Config(**json.load(open(os.path.join(d, "train_summary.json")))["config"])
    if name == "retrieve-demo":
        m = EmbedModel(cfg)
    else:
        lex = np.load(os.path.join(WORK, "qa", "lexicon.npz"))
        m = (LexicalQA if name == "qa-demo" else LexicalRanker)(cfg, lex["norm_ids"], lex["idf"])
    m.load_state_dict(torch.load(os.path.join(d, "weights.pt")))
    return m.eval()


def calibration_batches(name, n=256, bs=16):
    rng = random.Random(11)
    if name == "qa-demo":
        rows = pickle.load(open(os.path.join(WORK, "qa", "train.pkl"), "rb"))
        seqs = [(list(map(int, r[0])), r[1]) for r in rng.sample(rows, n)]
    else:
        data = pickle.load(open(os.path.join(WORK, "ret", "data.pkl"), "rb"))["train"]
        qs = rng.sample(data["qs"], n)
        if name == "rerank-demo":
            seqs = []
            for k, q in enumerate(qs):
                p = data["paras"][q["pid"] if k % 2 == 0 or not q["bm25_neg"] else q["bm25_neg"][0]]
                qq = q["qids"][:62]
                s = [2] + qq + [3] + p[:256 - len(qq) - 3] + [3]
                seqs.append((s, len(qq) + 2))
        else:
            seqs = [([2] + q["qids"][:62] + [3], None) for q in qs[: n // 2]] + [([2] + data["paras"][q["pid"]][:254] + [3], None) for q in qs[n // 2:]]
    for k in range(0, len(seqs), bs):
        ch = seqs[k:k + bs]
        t = max(len(s) for s, _ in ch)
        ids = torch.zeros(len(ch), t, dtype=torch.long); att = torch.zeros_like(ids); tt = torch.zeros_like(ids)
        for i, (s, ql) in enumerate(ch):
            ids[i, :len(s)] = torch.tensor(s); att[i, :len(s)] = 1
            if ql is not None:
                tt[i, ql:len(s)] = 1
        yield ids, att, tt


def activation_ranges(model, name):
    ranges = {}

    def hook(mod, inp):
        x = inp[0].detach()
        lo, hi = float(x.min()), float(x.max())
        r = ranges.setdefault(id(mod), [0.0, 0.0])  # always include 0
        r[0], r[1] = min(r[0], lo), max(r[1], hi)
    hs = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for b in calibration_batches(name):
            model(*b)
    for h in hs:
        h.remove()
    # (padding positions are computed too and then ignored by the model; they only widen the ranges a little)
    return [(m, ranges[id(m)]) for m in model.modules() if isinstance(m, torch.nn.Linear) and id(m) in ranges]


def quantize_graph(onnx_model, torch_model, name):
    g = onnx_model.graph
    inits = {i.name: i for i in g.initializer}
    linears = activation_ranges(torch_model, name)
    nodes, new_inits, n_q = [], [], 0
    # MatMul output consumed only by an Add with a constant 1-D bias: that Add can be folded into MatMulIntegerToFloat
    uses = {}
    for n in g.node:
        for i in n.input:
            uses.setdefault(i, []).append(n)
    consumers, skip = {}, set()
    for n in g.node:
        if n.op_type == "Add":
            for x, b in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                if len(uses.get(x, [])) == 1 and b in inits and len(inits[b].dims) == 1:
                    consumers[x] = (n, b)
    for n in g.node:
        if n.output and n.output[0] in skip:
            continue
        w_name = n.input[1] if n.op_type == "MatMul" and len(n.input) > 1 else None
        if w_name in inits and len(inits[w_name].dims) == 2:
            w = numpy_helper.to_array(inits[w_name]).astype(np.float32)  # [in, out] = Linear.weight.T
            match = [(m, r) for m, r in linears if tuple(m.weight.shape) == (w.shape[1], w.shape[0]) and
                     np.allclose(m.weight.detach().numpy().T, w, atol=1e-6)]
            assert len(match) == 1, (w_name, len(match))
            lo, hi = match[0][1]
            s_x = max(hi - lo, 1e-8) / 255.0
            zp_x = int(np.clip(round(-lo / s_x), 0, 255))
            s_w = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
            w_q = np.clip(np.rint(w / s_w), -127, 127).astype(np.int8)
            base = w_name.replace(".", "_").replace(":", "_")
            x = n.input[0]
            new_inits += [numpy_helper.from_array(w_q, base + "_q"), numpy_helper.from_array(np.zeros(w.shape[1], np.int8), base + "_zpw"),
                          numpy_helper.from_array(np.array(s_x, np.float32), base + "_sx"), numpy_helper.from_array(np.array(zp_x, np.uint8), base + "_zpx")]
            nodes.append(helper.make_node("QuantizeLinear", [x, base + "_sx", base + "_zpx"], [base + "_xq"]))
            if FUSED:  # ONNX Runtime's contrib kernel: int8 GEMM, rescale to float and the bias in one pass
                new_inits.append(numpy_helper.from_array(s_w.astype(np.float32), base + "_sw"))
                ins = [base + "_xq", base + "_q", base + "_sx", base + "_sw", base + "_zpx", base + "_zpw"]
                out = list(n.output)
                bias_add = consumers.get(n.output[0])
                if bias_add is not None:  # MatMul -> Add(bias): the bias goes into the kernel, the Add is dropped
                    ins.append(bias_add[1]); out = list(bias_add[0].output); skip.add(bias_add[0].output[0])
                nodes.append(helper.make_node("MatMulIntegerToFloat", ins, out, domain="com.microsoft"))
            else:
                new_inits.append(numpy_helper.from_array((s_x * s_w).astype(np.float32), base + "_s"))
                nodes.append(helper.make_node("MatMulInteger", [base + "_xq", base + "_q", base + "_zpx", base + "_zpw"], [base + "_i32"]))
                nodes.append(helper.make_node("Cast", [base + "_i32"], [base + "_f"], to=TensorProto.FLOAT))
                nodes.append(helper.make_node("Mul", [base + "_f", base + "_s"], list(n.output)))
            inits.pop(w_name); n_q += 1
        elif n.op_type == "Gather" and n.input[0] == "enc.word.weight":
            w = numpy_helper.to_array(inits["enc.word.weight"]).astype(np.float32)
            s = np.maximum(np.abs(w).max(axis=1), 1e-8) / 127.0
            q = np.clip(np.rint(w / s[:, None]), -127, 127).astype(np.int8)
            new_inits += [numpy_helper.from_array(q, "word_q"), numpy_helper.from_array(s.astype(np.float32)[:, None], "word_s")]
            nodes.append(helper.make_node("Gather", ["word_q", n.input[1]], ["word_gq"]))
            nodes.append(helper.make_node("Cast", ["word_gq"], ["word_gf"], to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Gather", ["word_s", n.input[1]], ["word_gs"]))
            nodes.append(helper.make_node("Mul", ["word_gf", "word_gs"], list(n.output)))
            inits.pop("enc.word.weight")
        else:
            nodes.append(n)
    del g.node[:]; g.node.extend(nodes)
    del g.initializer[:]; g.initializer.extend(list(inits.values()) + new_inits)
    if FUSED and not any(o.domain == "com.microsoft" for o in onnx_model.opset_import):
        onnx_model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(onnx_model)
    return onnx_model, n_q


def main():
    seed_all()
    res = json.load(open(os.path.join(WORK, "int8.json"))) if os.path.exists(os.path.join(WORK, "int8.json")) else {}
    for name in sys.argv[1:]:
        d = RUNS[name]
        m, n_q = quantize_graph(onnx.load(os.path.join(d, "model.onnx")), load_torch(name), name)
        out = os.path.join(d, "model.int8.onnx")
        onnx.save(m, out)
        res[name] = {"matmuls_quantized": n_q, "fp32_bytes": os.path.getsize(os.path.join(d, "model.onnx")), "int8_bytes": os.path.getsize(out)}
        print(name, json.dumps(res[name]), flush=True)
    json.dump(res, open(os.path.join(WORK, "int8.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
